// blindlist open: read list mail as a member, through one of the reading paths
// (DESIGN.md): tls (F), rewrap (E), cert (G), blind, secret (S; also B posts).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>

#include "api/groupd_client.h"
#include "api/json_fields.h"
#include "api/membership.h"
#include "blindlist/base64.h"
#include "blindlist/error_codes.h"
#include "commands.h"
#include "crypto/blind.h"
#include "crypto/cms.h"
#include "crypto/keys.h"
#include "crypto/signature.h"
#include "io.h"
#include "maildir_reopen.h"
#include "mime/smime.h"
#include "server_options.h"
#include "threshold_archive.h"
#include "threshold_open.h"

namespace blindlist::cli {

using json = nlohmann::json;
using crypto::RecipientKind;

namespace {

struct OpenOptions {
  IoOptions io;
  api::ApiCredentials creds;
  std::string group;
  std::string method;
  std::vector<std::string> servers;  // --server, repeated for threshold reads
  std::string member_cert;
  std::string member_key;
  std::string reason = "read";
  std::string rsa_padding;  // empty: groupd's default (OAEP)
  bool splice_only = false;
  bool filter = false;
  std::string maildir;
  bool reopen = false;
  std::string nodes_file;             // threshold: the nodes, one URL per line
  std::vector<std::string> archives;  // threshold: posts to open at once
  std::string out_dir;                // threshold --archive: where the opened posts go
};

// groupd as `open` asks it. As a delivery filter, each failed call is sorted at once: one that
// may pass with time (api::ApiClient::IsTransient: no answer, 5xx, 429, a malformed answer)
// becomes errc::kTempFail, so the mail system tries again; a refusal keeps the server's code,
// and the post is passed through.
class Groupd {
 public:
  Groupd(const api::ApiCredentials& creds, bool filter) : client_(creds), filter_(filter) {}

  Result<json> Call(const std::string& method, const std::string& path, const json& body) {
    auto r = client_.Call(method, path, body);
    if (!r.ok()) return Sorted(r.error());
    return r;
  }
  Result<std::string> GetText(const std::string& path) {
    auto r = client_.GetText(path);
    if (!r.ok()) return Sorted(r.error());
    return r;
  }

  // A field of groupd's answer: missing, of another type, or not base64 is a malformed answer,
  // an error value (never a JSON exception).
  Result<std::string> Text(const json& reply, const char* field) const {
    if (!reply.is_object()) return Malformed("the answer is not a JSON object");
    auto text = api::StringField(reply, field);
    if (!text) return Malformed(std::string("no string \"") + field + "\" in the answer");
    return std::move(*text);
  }
  template <typename Out>
  Result<Out> Base64(const json& reply, const char* field) const {
    BL_TRY_ASSIGN(std::string text, Text(reply, field));
    Out out;
    if (!Base64Decode(text, out)) return Malformed(std::string("\"") + field + "\" is not base64");
    return out;
  }
  Error Malformed(const std::string& what) const {
    return MakeError(std::string(filter_ ? errc::kTempFail : errc::kBadReply),
                     "malformed answer from groupd: " + what);
  }

 private:
  Error Sorted(const Error& e) const {
    if (!filter_ || !api::ApiClient::IsTransient(e, client_.last_status())) return e;
    if (e.code == errc::kBadReply) return Malformed(e.message);
    return MakeError(std::string(errc::kTempFail), "groupd unavailable: " + e.message);
  }

  api::ApiClient client_;
  bool filter_;
};

// The RecipientInfos that may be the group's: key transport and key agreement,
// minus those addressed to the member's own certificate.
std::vector<std::size_t> GroupCandidates(const crypto::Envelope& env,
                                         const crypto::Certificate* mine) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < env.recipients.size(); ++i) {
    const auto& ri = env.recipients[i];
    if (ri.kind != RecipientKind::kKeyTrans && ri.kind != RecipientKind::kKeyAgree) continue;
    if (mine != nullptr) {
      bool for_me = ri.kind == RecipientKind::kKeyTrans && ri.rid.Matches(*mine);
      for (const auto& rek : ri.recipient_keys) for_me = for_me || rek.rid.Matches(*mine);
      if (for_me) continue;
    }
    out.push_back(i);
  }
  return out;
}

// Signs path G requests with the membership certificate's key (api::PossessionMessage).
struct PossessionProver {
  std::string group;
  crypto::PrivateKey key;

  Result<json> Prove(const std::string& recipient_info_b64) const {
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    BL_TRY_ASSIGN(Bytes signature, crypto::SignMessage(key, api::PossessionMessage(
                                                                group, now, {recipient_info_b64})));
    return json{{"time", now}, {"signature", Base64Encode(signature)}};
  }
};

// Asks groupd for `path` with each candidate RecipientInfo until one is the group's.
// With `prover` (path G), each request carries the proof of possession of its key.
Result<json> AskForGroupRecipient(Groupd& client, const std::string& path,
                                  const crypto::Envelope& env,
                                  const std::vector<std::size_t>& candidates, json body,
                                  std::size_t* used, const PossessionProver* prover = nullptr) {
  if (candidates.empty())
    return MakeError(std::string(errc::kNoRecipient),
                     "the message has no RecipientInfo for a group key");
  Error last = MakeError(std::string(errc::kNoRecipient),
                         "no RecipientInfo of this message belongs to the group");
  for (std::size_t index : candidates) {
    std::string recipient_info = Base64Encode(env.recipients[index].der);
    body["recipient_info"] = recipient_info;
    if (prover != nullptr) {
      BL_TRY_ASSIGN(body["proof"], prover->Prove(recipient_info));
    }
    auto r = client.Call("POST", path, body);
    if (r.ok()) {
      *used = index;
      return r;
    }
    last = r.error();
    if (last.code != errc::kUnwrapFailed) break;  // a refusal, not a wrong guess: stop asking
  }
  return last;
}

Result<std::string> Finish(const mime::SmimeEnvelope& smime, const crypto::Envelope& env,
                           const SecretBytes& cek) {
  auto plain = crypto::DecryptContent(env, cek);
  if (!plain.ok()) {
    // groupd answers a RecipientInfo of its key that does not really unwrap (altered, or bad
    // padding) with a key all the same (implicit rejection): that key fails here, the GCM tag
    // or the CBC padding, and nothing of the content is shown.
    const std::string& code = plain.error().code;
    if (code == errc::kTampered || code == errc::kUnwrapFailed) {
      return MakeError(
          "unreadable",
          "cannot read this post: the message key from the group server does not "
          "decrypt it (the post was altered, or is not encrypted to this group's key)");
    }
    return plain.error();
  }
  return mime::UnprotectHeaders(AsChars(plain->view()), smime.outer_headers);
}

// One reading: the parsed post, the member's certificate if any, and groupd.
struct Reading {
  OpenOptions& o;
  mime::SmimeEnvelope smime;
  crypto::Envelope env;
  std::optional<crypto::Certificate> member_cert;
  Groupd groupd;
  std::string base;  // "/v1/groups/GROUP"
  json body;
  std::vector<std::size_t> candidates;

  // The output; as a filter, a failure to write it is worth another try.
  Status Emit(std::string_view data) const {
    Status st = WriteOutput(o.io.out, data);
    if (!st.ok() && o.filter)
      return MakeError(std::string(errc::kTempFail),
                       "cannot write the output: " + st.error().message);
    return st;
  }
  Status EmitPlain(const SecretBytes& cek) {
    BL_TRY_ASSIGN(std::string message, Finish(smime, env, cek));
    return Emit(message);
  }
};

Status OpenTls(Reading& r) {
  std::size_t used = 0;
  BL_TRY_ASSIGN(json reply, AskForGroupRecipient(r.groupd, r.base + "/unwrap", r.env, r.candidates,
                                                 r.body, &used));
  BL_TRY_ASSIGN(SecretBytes cek, r.groupd.Base64<SecretBytes>(reply, "cek"));
  return r.EmitPlain(cek);
}

// Paths E (rewrap) and G (cert).
Status OpenRewrap(Reading& r) {
  OpenOptions& o = r.o;
  std::string path = r.base + (o.method == "rewrap" ? "/rewrap" : "/rewrap/certificate");
  if (!o.rsa_padding.empty()) r.body["rsa_padding"] = o.rsa_padding;
  std::optional<PossessionProver> prover;
  if (o.method == "cert") {
    BL_TRY_ASSIGN(std::string pem, ReadInput(o.member_cert, 1 << 20));
    r.body["certificate"] = pem;
    BL_TRY_ASSIGN(crypto::PrivateKey key, crypto::PrivateKey::LoadFile(o.member_key));
    prover = PossessionProver{o.group, std::move(key)};
  }
  std::size_t used = 0;
  BL_TRY_ASSIGN(json reply, AskForGroupRecipient(r.groupd, path, r.env, r.candidates, r.body, &used,
                                                 prover ? &*prover : nullptr));
  BL_TRY_ASSIGN(Bytes ri, r.groupd.Base64<Bytes>(reply, "recipient_info"));
  // The splice: the member's RecipientInfo replaces the group's, so the post is
  // ordinary S/MIME for this member; the encrypted content is untouched.
  if (Status spliced = r.env.ReplaceRecipient(used, ri); !spliced.ok())
    return r.groupd.Malformed("\"recipient_info\" is not a RecipientInfo: " +
                              spliced.error().message);
  if (o.splice_only) {
    r.smime.cms = r.env.Serialize();
    return r.Emit(mime::SerializeSmime(r.smime, r.env.auth_enveloped));
  }
  BL_TRY_ASSIGN(crypto::PrivateKey key, crypto::PrivateKey::LoadFile(o.member_key));
  BL_TRY_ASSIGN(SecretBytes cek, crypto::UnwrapCek(r.env.recipients[used], key));
  return r.EmitPlain(cek);
}

Status OpenBlind(Reading& r) {
  // The group certificate (public) gives n and e, or the curve.
  BL_TRY_ASSIGN(std::string pem, r.groupd.GetText(r.base + "/certificate"));
  auto group_cert = crypto::Certificate::Load(AsBytes(pem));
  if (!group_cert.ok()) return r.groupd.Malformed("the group certificate does not load");
  for (std::size_t index : r.candidates) {
    const auto& ri = r.env.recipients[index];
    std::size_t rek = 0;
    bool mine = ri.kind == RecipientKind::kKeyTrans && ri.rid.Matches(*group_cert);
    for (std::size_t k = 0; k < ri.recipient_keys.size() && !mine; ++k) {
      if (ri.recipient_keys[k].rid.Matches(*group_cert)) {
        mine = true;
        rek = k;
      }
    }
    if (!mine) continue;
    BL_TRY_ASSIGN(crypto::BlindRequest req, crypto::BlindRequest::Create(ri, *group_cert, rek));
    r.body["recipient_info"] = Base64Encode(ri.der);
    r.body["blinded"] = Base64Encode(req.blinded());
    BL_TRY_ASSIGN(json reply, r.groupd.Call("POST", r.base + "/blind", r.body));
    BL_TRY_ASSIGN(Bytes response, r.groupd.Base64<Bytes>(reply, "result"));
    BL_TRY_ASSIGN(SecretBytes cek, req.Finish(response));
    return r.EmitPlain(cek);
  }
  return MakeError(std::string(errc::kNoRecipient),
                   "no RecipientInfo for the group's current certificate (blind reads need it)");
}

// A threshold group: k of n nodes, each asked for its share of the blinded point.
Status OpenThreshold(Reading& r) {
  ThresholdRead t{r.o.servers, r.o.creds, r.o.group, r.o.reason, r.o.filter};
  std::vector<std::string> notes;
  auto cek = ThresholdUnwrap(t, r.env, r.candidates, notes);
  for (const auto& note : notes) std::fprintf(stderr, "blindlist: open: %s\n", note.c_str());
  if (!cek.ok()) return cek.error();
  return r.EmitPlain(*cek);
}

// Paths S and B: group secrets this member may hold; a post from the exploder (path B) already
// carries a KEKRecipientInfo, otherwise ask for one (path S).
Status OpenSecret(Reading& r) {
  BL_TRY_ASSIGN(
      json reply,
      r.groupd.Call("GET", r.base + "/secrets?reason=" + api::ApiClient::Segment(r.o.reason),
                    nullptr));
  const json* list = api::ArrayField(reply, "secrets");
  if (list == nullptr) return r.groupd.Malformed("no array \"secrets\" in the answer");
  std::vector<crypto::GroupSecret> secrets;
  for (const auto& s : *list) {
    BL_TRY_ASSIGN(std::string key_id, r.groupd.Text(s, "key_id"));
    crypto::GroupSecret gs;
    if (!FromHex(key_id, gs.id)) return r.groupd.Malformed("\"key_id\" is not hex");
    BL_TRY_ASSIGN(gs.key, r.groupd.Base64<SecretBytes>(s, "secret"));
    secrets.push_back(std::move(gs));
  }
  auto try_secrets = [&](const crypto::Envelope& e) -> Result<SecretBytes> {
    for (const auto& gs : secrets) {
      auto cek = crypto::FindAndUnwrapCek(e, gs);
      if (cek.ok() || cek.error().code != errc::kNoRecipient) return cek;
    }
    return MakeError(std::string(errc::kNoRecipient),
                     "no KEKRecipientInfo for the group's secrets");
  };
  auto direct = try_secrets(r.env);
  if (direct.ok()) return r.EmitPlain(*direct);
  std::size_t used = 0;
  BL_TRY_ASSIGN(json rewrapped, AskForGroupRecipient(r.groupd, r.base + "/rewrap/secret", r.env,
                                                     r.candidates, r.body, &used));
  BL_TRY_ASSIGN(Bytes ri, r.groupd.Base64<Bytes>(rewrapped, "recipient_info"));
  if (Status added = r.env.AddRecipient(ri); !added.ok())
    return r.groupd.Malformed("\"recipient_info\" is not a RecipientInfo: " +
                              added.error().message);
  BL_TRY_ASSIGN(SecretBytes cek, try_secrets(r.env));
  return r.EmitPlain(cek);
}

// `*is_smime` is set once the input parsed as an S/MIME envelope.
Status OpenMessage(OpenOptions& o, const std::string& input, bool* is_smime) {
  if (o.method != "threshold" && o.servers.size() != 1)
    return MakeError("usage", "--method " + o.method + " takes exactly one --server");
  if (o.method != "threshold") o.creds.server = o.servers.front();
  if (o.method == "threshold" && o.splice_only)
    return MakeError("usage",
                     "--method threshold decrypts; it cannot splice (--filter, --splice-only)");
  BL_TRY(FinishServerOptions(o.creds));
  bool needs_member_key = o.method == "rewrap" || o.method == "cert";
  // Path G proves possession of the key on every request, so it needs the key even to splice.
  if (needs_member_key && (o.member_cert.empty() || o.member_key.empty()) &&
      !(o.method == "rewrap" && o.splice_only && !o.member_cert.empty())) {
    return MakeError("usage", "--method " + o.method + " needs --member-cert and --member-key");
  }
  if (o.splice_only && !needs_member_key)
    return MakeError("usage", "--splice-only works with --method rewrap or cert");
  if (!o.rsa_padding.empty() && !needs_member_key)
    return MakeError("usage", "--rsa-padding works with --method rewrap or cert");
  BL_TRY_ASSIGN(mime::SmimeEnvelope smime, mime::ParseSmime(input));
  BL_TRY_ASSIGN(crypto::Envelope env, crypto::Envelope::Parse(smime.cms));
  *is_smime = true;

  std::optional<crypto::Certificate> member_cert;
  if (!o.member_cert.empty()) {
    BL_TRY_ASSIGN(crypto::Certificate c, crypto::Certificate::LoadFile(o.member_cert));
    member_cert = std::move(c);
  }
  auto candidates = GroupCandidates(env, member_cert ? &*member_cert : nullptr);
  Reading r{o,
            std::move(smime),
            std::move(env),
            std::move(member_cert),
            Groupd(o.creds, o.filter),
            "/v1/groups/" + api::ApiClient::Segment(o.group),
            json{{"reason", o.reason}},
            std::move(candidates)};
  if (o.method == "tls") return OpenTls(r);
  if (o.method == "rewrap" || o.method == "cert") return OpenRewrap(r);
  if (o.method == "blind") return OpenBlind(r);
  if (o.method == "threshold") return OpenThreshold(r);
  if (o.method == "secret") return OpenSecret(r);
  return MakeError("usage", "unknown --method " + o.method);
}

// True when the header section has a List-Id field naming <list-id> (the list address with
// '@' as '.', as listd writes it), compared without regard to case.
bool HasListId(const std::string& message, const std::string& list) {
  std::string id = "<" + list + ">";
  std::replace(id.begin(), id.end(), '@', '.');
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  id = lower(id);
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t eol = message.find('\n', pos);
    if (eol == std::string::npos) eol = message.size();
    std::string line = lower(message.substr(pos, eol - pos));
    if (line.empty() || line == "\r") break;  // end of the header section
    if (line.starts_with("list-id:")) {
      // The value may be folded onto continuation lines.
      std::size_t next = eol + 1;
      while (next < message.size() && (message[next] == ' ' || message[next] == '\t')) {
        const std::size_t e = std::min(message.find('\n', next), message.size());
        line += lower(message.substr(next, e - next));
        next = e + 1;
      }
      if (line.find(id) != std::string::npos) return true;
    }
    pos = eol + 1;
  }
  return false;
}

// `message` without the X-Blindlist-Filter lines of its outer header block: once a post the
// filter passed through is opened, the reason it was passed through no longer holds.
std::string WithoutFilterHeader(const std::string& message) {
  static constexpr std::string_view kField = "x-blindlist-filter:";
  std::string out;
  out.reserve(message.size());
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t eol = message.find('\n', pos);
    if (eol == std::string::npos) break;
    const std::string_view line(message.data() + pos, eol + 1 - pos);
    if (line == "\n" || line == "\r\n") break;  // the end of the header block
    const bool ours = line.size() >= kField.size() &&
                      std::equal(kField.begin(), kField.end(), line.begin(), [](char a, char b) {
                        return a == std::tolower(static_cast<unsigned char>(b));
                      });
    if (!ours) out.append(line);
    pos = eol + 1;
  }
  out.append(message, pos, std::string::npos);
  return out;
}

// --maildir DIR --reopen: the posts of this list a delivery filter passed through still
// encrypted to the group are opened as --filter opens them (ordinary S/MIME for the member,
// never plaintext on the mail server), each replacing its original (maildir_reopen.h).
Status RunReopen(OpenOptions& o) {
  if (o.maildir.empty() || !o.reopen)
    return MakeError("usage", "--reopen and --maildir DIR go together");
  if ((o.method != "rewrap" && o.method != "cert") || o.member_cert.empty()) {
    return MakeError("usage",
                     "--reopen works like --filter: --method rewrap or cert with --member-cert");
  }
  BL_TRY_ASSIGN(crypto::Certificate mine, crypto::Certificate::LoadFile(o.member_cert));
  // Read --token-file now: each message is opened with a copy of these options, and the file's
  // path belongs to this ApiCredentials object, not to its copies.
  BL_TRY(FinishServerOptions(o.creds));
  o.splice_only = true;
  auto is_candidate = [&](const std::string& message) {
    if (!HasListId(message, o.group)) return false;
    auto smime = mime::ParseSmime(message);
    if (!smime.ok()) return false;
    auto env = crypto::Envelope::Parse(smime->cms);
    return env.ok() && !GroupCandidates(*env, &mine).empty();
  };
  auto open_into = [&](const std::string& message, const std::string& out_path) {
    OpenOptions one = o;
    one.io.out = out_path;
    bool is_smime = false;
    return OpenMessage(one, WithoutFilterHeader(message), &is_smime);
  };
  BL_TRY_ASSIGN(ReopenCounts counts, ReopenMaildir(o.maildir, is_candidate, open_into));
  std::fprintf(stderr, "blindlist: %s: %d opened, %d still encrypted (kept), %d other messages\n",
               o.maildir.c_str(), counts.opened, counts.failed, counts.skipped);
  if (counts.failed > 0) {
    return MakeError(
        std::string(errc::kTempFail),
        std::to_string(counts.failed) + " post(s) could not be opened now; run it again later");
  }
  return Status::Ok();
}

// The pass-through copy of a post the filter could not open: the input unchanged, but for one
// header line at the end of the outer header block (never in the CMS body), saying why.
std::string WithFilterHeader(const std::string& input, const std::string& code) {
  std::string reason;
  for (char c : code.substr(0, 64)) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '.' || c == '_';
    reason.push_back(plain ? c : '_');
  }
  if (reason.empty()) reason = "unknown";
  // The first empty line ends the header block; the new line takes the line ending before it.
  for (std::size_t pos = 0; pos < input.size();) {
    std::size_t eol = input.find('\n', pos);
    if (eol == std::string::npos) break;
    const bool crlf = eol > pos && input[eol - 1] == '\r';
    const std::size_t line_length = eol - pos - (crlf ? 1 : 0);
    if (line_length == 0) {
      if (pos == 0) break;  // no header at all
      std::string line =
          "X-Blindlist-Filter: passed-through; reason=" + reason + (crlf ? "\r\n" : "\n");
      return input.substr(0, pos) + line + input.substr(pos);
    }
    pos = eol + 1;
  }
  return input;
}

// As a delivery filter (Postfix, procmail, maildrop), a post is never lost and a failure never
// hidden: what may pass with time (groupd unreachable, 5xx, 429, a malformed answer, the input
// or output failing) exits 75 (EX_TEMPFAIL) with nothing on standard output, so the mail system
// tries again; a refusal that will not change (not a member, unwrap-failed, not a list post)
// passes the post through unchanged, exit 0, with the reason on standard error and, for an
// S/MIME post, in an X-Blindlist-Filter header.
Status RunFilter(OpenOptions& o) {
  auto input = ReadInput(o.io.in);
  if (!input.ok()) {
    return MakeError(std::string(errc::kTempFail),
                     "open --filter: cannot read the message: " + input.error().message);
  }
  o.splice_only = true;
  bool is_smime = false;
  Status st = [&]() -> Status {
    try {
      return OpenMessage(o, *input, &is_smime);
    } catch (const std::exception& e) {  // nothing is expected to throw; if it does, try later
      return MakeError(std::string(errc::kTempFail), std::string("internal error: ") + e.what());
    }
  }();
  if (st.ok()) return st;
  if (st.error().code == errc::kTempFail) {
    return MakeError(std::string(errc::kTempFail),
                     "open --filter: " + st.error().message + "; exit 75, try again later");
  }
  std::fprintf(stderr, "blindlist: open --filter: %s; delivering the message unchanged (%s)\n",
               st.error().message.c_str(), st.error().code.c_str());
  Status passed =
      WriteOutput(o.io.out, is_smime ? WithFilterHeader(*input, st.error().code) : *input);
  if (!passed.ok()) {
    return MakeError(std::string(errc::kTempFail),
                     "open --filter: cannot write the output: " + passed.error().message);
  }
  return Status::Ok();
}

// --nodes-file adds its nodes to --server's; --archive opens many posts at once (threshold).
Status PrepareThreshold(OpenOptions& o) {
  if (o.method != "threshold") {
    if (!o.nodes_file.empty() || !o.archives.empty() || !o.out_dir.empty())
      return MakeError("usage", "--nodes-file, --archive and --out-dir are for --method threshold");
    return Status::Ok();
  }
  if (!o.nodes_file.empty()) {
    BL_TRY_ASSIGN(auto nodes, ReadNodesFile(o.nodes_file));
    o.servers.insert(o.servers.end(), nodes.begin(), nodes.end());
  }
  return Status::Ok();
}

Status RunOpen(OpenOptions& o) {
  BL_TRY(PrepareThreshold(o));
  if (o.servers.empty()) return MakeError("usage", "--server is required");
  if (!o.archives.empty()) {
    if (o.filter || o.reopen || !o.maildir.empty())
      return MakeError("usage", "--archive does not go with --filter, --reopen or --maildir");
    BL_TRY(FinishServerOptions(o.creds));
    return OpenThresholdArchive(ThresholdRead{o.servers, o.creds, o.group, o.reason, false},
                                o.archives, o.out_dir);
  }
  if (!o.out_dir.empty()) return MakeError("usage", "--out-dir goes with --archive");
  if (o.reopen || !o.maildir.empty()) return RunReopen(o);
  if (o.filter) return RunFilter(o);
  BL_TRY_ASSIGN(std::string input, ReadInput(o.io.in));
  bool is_smime = false;
  return OpenMessage(o, input, &is_smime);
}
}  // namespace

void AddOpenCommand(CLI::App& app, Action* chosen) {
  auto o = std::make_shared<OpenOptions>();
  auto* cmd = app.add_subcommand("open", "Read list mail as a member, through the group server");
  AddIo(cmd, o->io);
  // --server is checked in RunOpen: a threshold read may name its nodes with --nodes-file.
  AddServerOptions(cmd, o->creds, false, &o->servers);
  cmd->add_option("--group", o->group, "The list address")->required();
  cmd->add_option("--method", o->method,
                  "tls (F), rewrap (E), cert (G), blind, secret (S/B), threshold (k of n nodes, "
                  "one --server each)")
      ->required()
      ->check(CLI::IsMember({"tls", "rewrap", "cert", "blind", "secret", "threshold"}));
  cmd->add_option("--member-cert", o->member_cert,
                  "Your certificate (rewrap) or membership certificate (cert)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--member-key", o->member_key,
                  "Its private key (cert: also signs each request, proving possession)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--reason", o->reason, "Why (recorded in the group server's audit)")
      ->capture_default_str();
  cmd->add_flag(
      "--splice-only", o->splice_only,
      "With rewrap/cert: write the post as ordinary S/MIME for you instead of decrypting it");
  cmd->add_option("--rsa-padding", o->rsa_padding,
                  "With rewrap/cert and an RSA certificate: the key transport padding of your "
                  "RecipientInfo (default: groupd's, oaep); pkcs1 for NSS/Thunderbird")
      ->check(CLI::IsMember({"oaep", "pkcs1"}));
  cmd->add_flag("--filter", o->filter,
                "Delivery filter (Postfix, procmail, maildrop): like --splice-only; exit 75 to "
                "be tried again later, or pass the message through unchanged (see below)");
  cmd->footer(
      "Exit status with --filter:\n"
      "  0   the post, spliced, on standard output; or, when groupd refuses for good (not a\n"
      "      member, unwrap-failed, any other 4xx but 429) or the message is not a list post,\n"
      "      the message unchanged (an S/MIME post gains one header, X-Blindlist-Filter:\n"
      "      passed-through; reason=CODE) and the reason on standard error\n"
      "  75  EX_TEMPFAIL, nothing on standard output, one line on standard error: groupd\n"
      "      unreachable (refused, timed out, TLS failed), a 5xx or 429 answer, a malformed\n"
      "      answer, or the message could not be read or written; the mail system retries\n"
      "  2   a usage error on the command line");
  cmd->add_option("--maildir", o->maildir,
                  "With --reopen: the Maildir (with tmp/, new/, cur/) to search");
  cmd->add_flag("--reopen", o->reopen,
                "Open, in place, the posts of --group in --maildir that --filter passed through "
                "still encrypted (groupd was down); exit 75 if some still cannot be opened");
  cmd->add_option("--nodes-file", o->nodes_file,
                  "threshold: a file naming the nodes, one https:// URL per line ('#' comments), "
                  "instead of (or besides) repeated --server")
      ->check(CLI::ExistingFile);
  cmd->add_option("--archive", o->archives,
                  "threshold: open every post of these files, mbox files or Maildirs at once "
                  "(one bulk request per node), into --out-dir")
      ->check(CLI::ExistingPath);
  cmd->add_option("--out-dir", o->out_dir,
                  "With --archive: the directory for the opened posts (NNNN.eml, in order)");
  cmd->callback([chosen, o] {
    // A usage error (exit 2) like any missing option: --server, or for threshold --nodes-file.
    if (o->servers.empty() && o->nodes_file.empty())
      throw CLI::RequiredError("--server (or, with --method threshold, --nodes-file)");
    *chosen = [o] { return RunOpen(*o); };
  });
}

}  // namespace blindlist::cli
