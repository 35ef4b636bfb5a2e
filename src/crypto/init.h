// OpenSSL set-up for a short-lived command. Thread-safety: call once, from main(), before any
// other thread exists.
#pragma once

namespace blindlist::crypto {

// Initialises libcrypto without reading the system's openssl.cnf unless OPENSSL_CONF names a
// file. The envelope commands use only the default provider's algorithms (AES-GCM/CBC, AES key
// wrap, RSA-OAEP/PKCS#1, ECDH P-256, SHA-256) and no configured OIDs or engines, and Debian's
// default file configures nothing; parsing it costs more than the encryption of a small post.
// An operator who needs a configured provider (FIPS) sets OPENSSL_CONF and it is honoured.
// OpenSSL's exit-time clean-up is not registered (the process ends right after its command).
void InitForCommandLine();

}  // namespace blindlist::crypto
