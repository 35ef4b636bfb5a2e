// encrypt, decrypt, rewrap, inspect: the S/MIME envelope commands.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

#include "blindlist/error_codes.h"
#include "commands.h"
#include "crypto/cms.h"
#include "crypto/cms_stream.h"
#include "crypto/keys.h"
#include "io.h"
#include "message_crypto.h"
#include "mime/base64_lines.h"
#include "mime/smime.h"

namespace blindlist::cli {

Status EncryptMessageTo(std::string_view message, const std::vector<crypto::Certificate>& certs,
                        const std::vector<crypto::GroupSecret>& secrets,
                        const crypto::EncryptOptions& options, const TextSink& sink) {
  BL_TRY_ASSIGN(mime::ProtectedHeader header, mime::ProtectHeaderSection(message));
  const std::string_view body = message.substr(header.body_offset);
  BL_TRY_ASSIGN(crypto::StreamEncryptor encryptor,
                crypto::StreamEncryptor::Start(header.inner_header.size() + body.size(), certs,
                                               secrets, options));
  // Pieces of 256 KiB: large enough that the per-call costs vanish, small enough to stay in cache.
  constexpr std::size_t kPiece = std::size_t{256} << 10;
  std::string text = mime::SmimeHeaderSection(header.outer_headers, crypto::IsGcm(options.cipher));
  mime::Base64LineEncoder base64(76, mime::SmimeLineEnding(header.outer_headers));
  base64.Append(encryptor.prefix(), text);
  Bytes ciphertext;
  ciphertext.reserve(kPiece + 64);
  auto feed = [&](std::string_view plain) -> Status {
    ciphertext.clear();
    BL_TRY(encryptor.Update(AsBytes(plain), ciphertext));
    base64.Append(ciphertext, text);
    if (text.size() < kPiece) return Status::Ok();
    BL_TRY(sink(text));
    text.clear();
    return Status::Ok();
  };
  BL_TRY(feed(header.inner_header));
  for (std::size_t pos = 0; pos < body.size(); pos += kPiece)
    BL_TRY(feed(body.substr(pos, kPiece)));
  ciphertext.clear();
  BL_TRY(encryptor.Finish(ciphertext));
  base64.Append(ciphertext, text);
  base64.Finish(text);
  return sink(text);
}

Result<std::string> EncryptMessage(std::string_view message,
                                   const std::vector<crypto::Certificate>& certs,
                                   const std::vector<crypto::GroupSecret>& secrets,
                                   const crypto::EncryptOptions& options) {
  std::string out;
  BL_TRY(EncryptMessageTo(message, certs, secrets, options, [&out](std::string_view piece) {
    out += piece;
    return Status::Ok();
  }));
  return out;
}

namespace {

using crypto::Certificate;
using crypto::ContentCipher;
using crypto::Envelope;
using crypto::GroupSecret;
using crypto::PrivateKey;
using crypto::RecipientKind;

struct SecretOptions {
  std::string key_hex;
  std::string id_hex;
  bool given() const { return !key_hex.empty() || !id_hex.empty(); }
};

void AddSecret(CLI::App* cmd, SecretOptions& s) {
  auto* key = cmd->add_option("--secret-key", s.key_hex, "Group secret (hex, 16/24/32 bytes)");
  auto* id = cmd->add_option("--secret-key-id", s.id_hex, "Group secret identifier (hex)");
  key->needs(id);
  id->needs(key);
}

Result<GroupSecret> ParseSecret(const SecretOptions& s) {
  GroupSecret secret;
  if (!FromHex(s.key_hex, secret.key)) return MakeError("usage", "--secret-key is not valid hex");
  if (secret.key.size() != 16 && secret.key.size() != 24 && secret.key.size() != 32) {
    return MakeError("usage", "--secret-key must be 16, 24 or 32 bytes (32, 48 or 64 hex digits)");
  }
  if (!FromHex(s.id_hex, secret.id) || secret.id.empty()) {
    return MakeError("usage", "--secret-key-id is not valid hex");
  }
  return secret;
}

struct ParsedInput {
  mime::SmimeEnvelope smime;
  Envelope envelope;
};

Result<ParsedInput> ReadEnvelope(const std::string& path) {
  BL_TRY_ASSIGN(Input input, Input::Read(path));
  ParsedInput parsed;
  BL_TRY_ASSIGN(parsed.smime, mime::ParseSmime(input.text()));
  BL_TRY_ASSIGN(parsed.envelope, Envelope::Parse(parsed.smime.cms));
  return parsed;
}

Status WriteEnvelope(const IoOptions& io, ParsedInput& parsed) {
  parsed.smime.cms = parsed.envelope.Serialize();
  return WriteOutput(io.out, mime::SerializeSmime(parsed.smime, parsed.envelope.auth_enveloped));
}

// Index of the RecipientInfo addressed to `cert`.
Result<std::size_t> FindRecipientFor(const Envelope& env, const Certificate& cert,
                                     std::size_t* rek_index) {
  for (std::size_t i = 0; i < env.recipients.size(); ++i) {
    const auto& ri = env.recipients[i];
    if (ri.kind == RecipientKind::kKeyTrans && ri.rid.Matches(cert)) return i;
    if (ri.kind == RecipientKind::kKeyAgree) {
      for (std::size_t k = 0; k < ri.recipient_keys.size(); ++k) {
        if (ri.recipient_keys[k].rid.Matches(cert)) {
          *rek_index = k;
          return i;
        }
      }
    }
  }
  return MakeError(std::string(errc::kNoRecipient),
                   "no RecipientInfo for the certificate " + cert.SubjectText());
}

// ---- encrypt ----
struct EncryptOptions {
  IoOptions io;
  std::vector<std::string> to;
  SecretOptions secret;
  std::string cipher = "aes-256-gcm";
  std::string padding = "oaep";
};

Status RunEncrypt(const EncryptOptions& o) {
  if (o.to.empty() && !o.secret.given()) {
    return MakeError("usage", "encrypt needs at least one --to CERT.pem or a --secret-key");
  }
  std::vector<Certificate> certs;
  for (const auto& path : o.to) {
    BL_TRY_ASSIGN(Certificate cert, Certificate::LoadFile(path));
    certs.push_back(std::move(cert));
  }
  std::vector<GroupSecret> secrets;
  if (o.secret.given()) {
    BL_TRY_ASSIGN(GroupSecret s, ParseSecret(o.secret));
    secrets.push_back(std::move(s));
  }
  crypto::EncryptOptions options;
  options.cipher =
      o.cipher == "aes-256-cbc" ? ContentCipher::kAes256Cbc : ContentCipher::kAes256Gcm;
  options.rsa_padding =
      o.padding == "pkcs1" ? crypto::RsaPadding::kPkcs1v15 : crypto::RsaPadding::kOaepSha256;
  BL_TRY_ASSIGN(Input message, Input::Read(o.io.in));
  std::optional<Output> out;  // opened at the first piece, once the message is accepted
  BL_TRY(EncryptMessageTo(message.text(), certs, secrets, options,
                          [&](std::string_view piece) -> Status {
                            if (!out) {
                              auto opened = Output::Open(o.io.out);
                              if (!opened.ok()) return opened.error();
                              out.emplace(std::move(opened).value());
                            }
                            return out->Write(piece);
                          }));
  return out->Commit();
}

// ---- decrypt ----
struct DecryptOptions {
  IoOptions io;
  std::string key;
  std::string cert;
  SecretOptions secret;
};

Result<SecretBytes> UnwrapForDecrypt(const DecryptOptions& o, const Envelope& env) {
  if (o.key.empty()) {
    BL_TRY_ASSIGN(GroupSecret secret, ParseSecret(o.secret));
    return crypto::FindAndUnwrapCek(env, secret);
  }
  BL_TRY_ASSIGN(PrivateKey key, PrivateKey::LoadFile(o.key));
  std::optional<Certificate> cert;
  if (!o.cert.empty()) {
    BL_TRY_ASSIGN(Certificate c, Certificate::LoadFile(o.cert));
    if (!c.Matches(key)) return MakeError("usage", o.cert + " does not belong to the key " + o.key);
    cert = std::move(c);
  }
  return crypto::FindAndUnwrapCek(env, key, cert ? &*cert : nullptr);
}

// The input is read once and never copied: the base64 body is decoded over it and the content
// decrypted where it lies (then zeroed), so a 24 MB post costs what its decryption costs.
Status RunDecrypt(const DecryptOptions& o) {
  if (o.key.empty() == !o.secret.given()) {
    return MakeError("usage", "decrypt needs exactly one of --key KEY.pem or --secret-key");
  }
  BL_TRY_ASSIGN(Input input, Input::Read(o.io.in));
  input.WipeOnClose();
  BL_TRY_ASSIGN(mime::SmimeEnvelopeView smime, mime::ParseSmimeInPlace(input.chars()));
  crypto::ContentLocation content;
  BL_TRY_ASSIGN(Envelope env, crypto::ParseEnvelopeForDecryption(smime.cms, &content));
  BL_TRY_ASSIGN(SecretBytes cek, UnwrapForDecrypt(o, env));
  std::string_view plain;
  SecretBytes copied;  // a segmented (BER) content is decrypted into a copy
  if (content.in_place) {
    const auto offset = static_cast<std::size_t>(smime.cms.data() - input.bytes().data());
    BL_TRY_ASSIGN(std::span<std::uint8_t> in_place,
                  crypto::DecryptContentInPlace(
                      env, input.bytes().subspan(offset, smime.cms.size()), content, cek));
    plain = AsChars(ByteView(in_place.data(), in_place.size()));
  } else {
    BL_TRY_ASSIGN(copied, crypto::DecryptContent(env, cek));
    plain = AsChars(copied.view());
  }
  BL_TRY_ASSIGN(mime::UnprotectedHeader header,
                mime::UnprotectHeaderSection(plain, smime.outer_headers));
  Status st = [&]() -> Status {
    BL_TRY_ASSIGN(Output out, Output::Open(o.io.out));
    BL_TRY(out.Write(header.head));
    BL_TRY(out.Write(plain.substr(header.body_offset)));
    return out.Commit();
  }();
  std::fill(header.head.begin(), header.head.end(), '\0');
  return st;
}

// ---- rewrap ----
struct RewrapOptions {
  IoOptions io;
  std::string key;
  std::string cert;
  std::string for_cert;
  SecretOptions secret;
  bool replace = false;
  std::string padding = "oaep";
};

Status RunRewrap(const RewrapOptions& o) {
  if (o.for_cert.empty() == !o.secret.given()) {
    return MakeError("usage", "rewrap needs exactly one of --for CERT.pem or --secret-key");
  }
  BL_TRY_ASSIGN(PrivateKey key, PrivateKey::LoadFile(o.key));
  BL_TRY_ASSIGN(Certificate group_cert, Certificate::LoadFile(o.cert));
  if (!group_cert.Matches(key))
    return MakeError("usage", o.cert + " does not belong to the key " + o.key);
  BL_TRY_ASSIGN(ParsedInput in, ReadEnvelope(o.io.in));
  std::size_t rek = 0;
  BL_TRY_ASSIGN(std::size_t index, FindRecipientFor(in.envelope, group_cert, &rek));
  BL_TRY_ASSIGN(SecretBytes cek, crypto::UnwrapCek(in.envelope.recipients[index], key, rek));
  Bytes ri;
  if (!o.for_cert.empty()) {
    BL_TRY_ASSIGN(Certificate target, Certificate::LoadFile(o.for_cert));
    auto padding =
        o.padding == "pkcs1" ? crypto::RsaPadding::kPkcs1v15 : crypto::RsaPadding::kOaepSha256;
    BL_TRY_ASSIGN(ri, crypto::WrapCek(cek, target, padding));
  } else {
    BL_TRY_ASSIGN(GroupSecret secret, ParseSecret(o.secret));
    BL_TRY_ASSIGN(ri, crypto::WrapCek(cek, secret));
  }
  if (o.replace) {
    BL_TRY(in.envelope.ReplaceRecipient(index, ri));
  } else {
    BL_TRY(in.envelope.AddRecipient(ri));
  }
  return WriteEnvelope(o.io, in);
}

// ---- inspect ----
struct InspectOptions {
  IoOptions io;
  bool json = false;
};

std::string_view FormName(mime::SmimeForm f) {
  switch (f) {
    case mime::SmimeForm::kMime:
      return "smime";
    case mime::SmimeForm::kDer:
      return "der";
    case mime::SmimeForm::kBase64:
      return "base64";
  }
  return "";
}

Status RunInspect(const InspectOptions& o) {
  BL_TRY_ASSIGN(ParsedInput in, ReadEnvelope(o.io.in));
  const Envelope& env = in.envelope;
  std::string cipher = env.cipher ? std::string(crypto::ContentCipherName(*env.cipher))
                                  : "unsupported (" + env.cipher_oid + ")";
  nlohmann::json j;
  j["form"] = FormName(in.smime.form);
  j["content_type"] = env.auth_enveloped ? "AuthEnvelopedData" : "EnvelopedData";
  j["cipher"] = cipher;
  j["size"] = in.smime.cms.size();
  j["encrypted_content_size"] = env.ciphertext.size();
  j["recipient_infos"] = nlohmann::json::array();
  // One line per RecipientInfo, written beside its JSON object (never read back from it).
  std::ostringstream lines;
  for (std::size_t i = 0; i < env.recipients.size(); ++i) {
    const auto& ri = env.recipients[i];
    nlohmann::json r;
    r["index"] = i;
    r["kind"] = crypto::RecipientKindName(ri.kind);
    r["key_algorithm"] = ri.AlgorithmName();
    r["size"] = ri.der.size();
    std::string id;
    if (ri.kind == RecipientKind::kKeyAgree) {
      auto ids = nlohmann::json::array();
      for (const auto& rek : ri.recipient_keys) ids.push_back(rek.rid.Describe());
      r["recipient_ids"] = ids;
      if (!ri.recipient_keys.empty()) id = ri.recipient_keys[0].rid.Describe();
    } else if (ri.kind == RecipientKind::kKeyTrans || ri.kind == RecipientKind::kKek) {
      id = ri.rid.Describe();
    }
    r["recipient_id"] = id;
    j["recipient_infos"].push_back(r);
    lines << "  [" << i << "] " << crypto::RecipientKindName(ri.kind) << "  " << id << "  "
          << ri.AlgorithmName() << "  (" << ri.der.size() << " bytes)\n";
  }
  if (o.json) return WriteOutput(o.io.out, j.dump(2) + "\n");
  std::ostringstream text;
  text << "form:                   " << FormName(in.smime.form) << "\n"
       << "content type:           " << (env.auth_enveloped ? "AuthEnvelopedData" : "EnvelopedData")
       << "\n"
       << "cipher:                 " << cipher << "\n"
       << "size:                   " << in.smime.cms.size() << " bytes\n"
       << "encrypted content size: " << env.ciphertext.size() << " bytes\n"
       << "recipient infos:        " << env.recipients.size() << "\n"
       << lines.str();
  return WriteOutput(o.io.out, text.str());
}

}  // namespace

void AddIo(CLI::App* cmd, IoOptions& io) {
  cmd->add_option("-i,--in", io.in, "Read from FILE instead of standard input");
  cmd->add_option("-o,--out", io.out, "Write to FILE instead of standard output");
}

void AddCryptoCommands(CLI::App& app, Action* chosen) {
  auto enc = std::make_shared<EncryptOptions>();
  auto* e = app.add_subcommand("encrypt",
                               "Encrypt an RFC 5322 message to certificates or a group secret");
  AddIo(e, enc->io);
  e->add_option("--to", enc->to, "Recipient certificate (PEM or DER); repeatable")
      ->check(CLI::ExistingFile);
  AddSecret(e, enc->secret);
  e->add_option("--cipher", enc->cipher, "Content cipher")
      ->check(CLI::IsMember({"aes-256-gcm", "aes-256-cbc"}))
      ->capture_default_str();
  e->add_option("--rsa-padding", enc->padding, "RSA key transport padding")
      ->check(CLI::IsMember({"oaep", "pkcs1"}))
      ->capture_default_str();
  e->callback([chosen, enc] { *chosen = [enc] { return RunEncrypt(*enc); }; });

  auto dec = std::make_shared<DecryptOptions>();
  auto* d = app.add_subcommand("decrypt",
                               "Decrypt an S/MIME message with a private key or a group secret");
  AddIo(d, dec->io);
  d->add_option("--key", dec->key, "Private key (PEM or DER)")->check(CLI::ExistingFile);
  d->add_option("--cert", dec->cert, "Certificate of the key, to pick its RecipientInfo")
      ->check(CLI::ExistingFile);
  AddSecret(d, dec->secret);
  d->callback([chosen, dec] { *chosen = [dec] { return RunDecrypt(*dec); }; });

  auto rew = std::make_shared<RewrapOptions>();
  auto* r = app.add_subcommand("rewrap",
                               "Add (or with --replace, substitute) a RecipientInfo for another "
                               "key, as the group key holder");
  AddIo(r, rew->io);
  r->add_option("--key", rew->key, "Group private key")->required()->check(CLI::ExistingFile);
  r->add_option("--cert", rew->cert, "Group certificate")->required()->check(CLI::ExistingFile);
  r->add_option("--for", rew->for_cert, "Target certificate")->check(CLI::ExistingFile);
  AddSecret(r, rew->secret);
  r->add_flag("--replace", rew->replace, "Replace the group's RecipientInfo instead of adding one");
  r->add_option("--rsa-padding", rew->padding, "RSA padding for an RSA target")
      ->check(CLI::IsMember({"oaep", "pkcs1"}))
      ->capture_default_str();
  r->callback([chosen, rew] { *chosen = [rew] { return RunRewrap(*rew); }; });

  auto ins = std::make_shared<InspectOptions>();
  auto* i =
      app.add_subcommand("inspect", "Describe an S/MIME envelope: cipher, RecipientInfos, sizes");
  AddIo(i, ins->io);
  i->add_flag("--json", ins->json, "Print JSON");
  i->callback([chosen, ins] { *chosen = [ins] { return RunInspect(*ins); }; });
}

}  // namespace blindlist::cli
