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
#include "api/membership.h"
#include "blindlist/base64.h"
#include "commands.h"
#include "crypto/blind.h"
#include "crypto/cms.h"
#include "crypto/keys.h"
#include "crypto/signature.h"
#include "io.h"
#include "maildir_reopen.h"
#include "mime/smime.h"
#include "server_options.h"

namespace blindlist::cli {

using json = nlohmann::json;
using crypto::RecipientKind;

namespace {

struct OpenOptions {
  IoOptions io;
  api::ApiCredentials creds;
  std::string group;
  std::string method;
  std::string member_cert;
  std::string member_key;
  std::string reason = "read";
  bool splice_only = false;
  bool filter = false;
  std::string maildir;
  bool reopen = false;
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
Result<json> AskForGroupRecipient(api::ApiClient& client, const std::string& path,
                                  const crypto::Envelope& env,
                                  const std::vector<std::size_t>& candidates, json body,
                                  std::size_t* used, const PossessionProver* prover = nullptr) {
  if (candidates.empty())
    return MakeError("no-recipient", "the message has no RecipientInfo for a group key");
  Error last = MakeError("no-recipient", "no RecipientInfo of this message belongs to the group");
  for (std::size_t index : candidates) {
    body["recipient_info"] = Base64Encode(env.recipients[index].der);
    if (prover != nullptr) {
      BL_TRY_ASSIGN(body["proof"], prover->Prove(body["recipient_info"].get<std::string>()));
    }
    auto r = client.Call("POST", path, body);
    if (r.ok()) {
      *used = index;
      return r;
    }
    last = r.error();
    if (last.code != "unwrap-failed") break;  // a refusal, not a wrong guess: stop asking
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
    if (code == "tampered" || code == "unwrap-failed") {
      return MakeError(
          "unreadable",
          "cannot read this post: the message key from the group server does not "
          "decrypt it (the post was altered, or is not encrypted to this group's key)");
    }
    return plain.error();
  }
  return mime::UnprotectHeaders(AsChars(plain->view()), smime.outer_headers);
}

Status OpenMessage(OpenOptions& o, const std::string& input) {
  BL_TRY(FinishServerOptions(o.creds));
  bool needs_member_key = o.method == "rewrap" || o.method == "cert";
  // Path G proves possession of the key on every request, so it needs the key even to splice.
  if (needs_member_key && (o.member_cert.empty() || o.member_key.empty()) &&
      !(o.method == "rewrap" && o.splice_only && !o.member_cert.empty())) {
    return MakeError("usage", "--method " + o.method + " needs --member-cert and --member-key");
  }
  if (o.splice_only && !needs_member_key)
    return MakeError("usage", "--splice-only works with --method rewrap or cert");
  BL_TRY_ASSIGN(mime::SmimeEnvelope smime, mime::ParseSmime(input));
  BL_TRY_ASSIGN(crypto::Envelope env, crypto::Envelope::Parse(smime.cms));

  std::optional<crypto::Certificate> member_cert;
  if (!o.member_cert.empty()) {
    BL_TRY_ASSIGN(crypto::Certificate c, crypto::Certificate::LoadFile(o.member_cert));
    member_cert = std::move(c);
  }
  api::ApiClient client(o.creds);
  std::string base = "/v1/groups/" + api::ApiClient::Segment(o.group);
  json body = {{"reason", o.reason}};
  std::size_t used = 0;
  auto candidates = GroupCandidates(env, member_cert ? &*member_cert : nullptr);

  if (o.method == "tls") {
    BL_TRY_ASSIGN(json r,
                  AskForGroupRecipient(client, base + "/unwrap", env, candidates, body, &used));
    SecretBytes cek;
    if (!Base64Decode(r["cek"].get<std::string>(), cek))
      return MakeError("bad-reply", "bad key in the server's reply");
    BL_TRY_ASSIGN(std::string message, Finish(smime, env, cek));
    return WriteOutput(o.io.out, message);
  }

  if (o.method == "rewrap" || o.method == "cert") {
    std::string path = base + (o.method == "rewrap" ? "/rewrap" : "/rewrap/certificate");
    std::optional<PossessionProver> prover;
    if (o.method == "cert") {
      BL_TRY_ASSIGN(std::string pem, ReadInput(o.member_cert, 1 << 20));
      body["certificate"] = pem;
      BL_TRY_ASSIGN(crypto::PrivateKey key, crypto::PrivateKey::LoadFile(o.member_key));
      prover = PossessionProver{o.group, std::move(key)};
    }
    BL_TRY_ASSIGN(json r, AskForGroupRecipient(client, path, env, candidates, body, &used,
                                               prover ? &*prover : nullptr));
    Bytes ri;
    if (!Base64Decode(r["recipient_info"].get<std::string>(), ri))
      return MakeError("bad-reply", "bad RecipientInfo in the reply");
    // The splice: the member's RecipientInfo replaces the group's, so the post is
    // ordinary S/MIME for this member; the encrypted content is untouched.
    BL_TRY(env.ReplaceRecipient(used, ri));
    if (o.splice_only) {
      smime.cms = env.Serialize();
      return WriteOutput(o.io.out, mime::SerializeSmime(smime, env.auth_enveloped));
    }
    BL_TRY_ASSIGN(crypto::PrivateKey key, crypto::PrivateKey::LoadFile(o.member_key));
    BL_TRY_ASSIGN(SecretBytes cek, crypto::UnwrapCek(env.recipients[used], key));
    BL_TRY_ASSIGN(std::string message, Finish(smime, env, cek));
    return WriteOutput(o.io.out, message);
  }

  if (o.method == "blind") {
    // The group certificate (public) gives n and e, or the curve.
    BL_TRY_ASSIGN(std::string pem, client.GetText(base + "/certificate"));
    BL_TRY_ASSIGN(crypto::Certificate group_cert, crypto::Certificate::Load(AsBytes(pem)));
    for (std::size_t index : candidates) {
      const auto& ri = env.recipients[index];
      std::size_t rek = 0;
      bool mine = ri.kind == RecipientKind::kKeyTrans && ri.rid.Matches(group_cert);
      for (std::size_t k = 0; k < ri.recipient_keys.size() && !mine; ++k) {
        if (ri.recipient_keys[k].rid.Matches(group_cert)) {
          mine = true;
          rek = k;
        }
      }
      if (!mine) continue;
      BL_TRY_ASSIGN(crypto::BlindRequest req, crypto::BlindRequest::Create(ri, group_cert, rek));
      body["recipient_info"] = Base64Encode(ri.der);
      body["blinded"] = Base64Encode(req.blinded());
      BL_TRY_ASSIGN(json r, client.Call("POST", base + "/blind", body));
      Bytes response;
      if (!Base64Decode(r["result"].get<std::string>(), response))
        return MakeError("bad-reply", "bad blind result");
      BL_TRY_ASSIGN(SecretBytes cek, req.Finish(response));
      BL_TRY_ASSIGN(std::string message, Finish(smime, env, cek));
      return WriteOutput(o.io.out, message);
    }
    return MakeError("no-recipient",
                     "no RecipientInfo for the group's current certificate (blind reads need it)");
  }

  if (o.method == "secret") {
    // Group secrets this member may hold; a post from the exploder (path B) already
    // carries a KEKRecipientInfo, otherwise ask for one (path S).
    BL_TRY_ASSIGN(
        json secrets,
        client.Call("GET", base + "/secrets?reason=" + api::ApiClient::Segment(o.reason), nullptr));
    auto try_secrets = [&](const crypto::Envelope& e) -> Result<SecretBytes> {
      for (const auto& s : secrets["secrets"]) {
        crypto::GroupSecret gs;
        if (!FromHex(s["key_id"].get<std::string>(), gs.id) ||
            !Base64Decode(s["secret"].get<std::string>(), gs.key)) {
          return MakeError("bad-reply", "bad group secret in the reply");
        }
        auto cek = crypto::FindAndUnwrapCek(e, gs);
        if (cek.ok() || cek.error().code != "no-recipient") return cek;
      }
      return MakeError("no-recipient", "no KEKRecipientInfo for the group's secrets");
    };
    auto direct = try_secrets(env);
    if (direct.ok()) {
      BL_TRY_ASSIGN(std::string message, Finish(smime, env, *direct));
      return WriteOutput(o.io.out, message);
    }
    BL_TRY_ASSIGN(json r, AskForGroupRecipient(client, base + "/rewrap/secret", env, candidates,
                                               body, &used));
    Bytes ri;
    if (!Base64Decode(r["recipient_info"].get<std::string>(), ri))
      return MakeError("bad-reply", "bad RecipientInfo in the reply");
    BL_TRY(env.AddRecipient(ri));
    BL_TRY_ASSIGN(SecretBytes cek, try_secrets(env));
    BL_TRY_ASSIGN(std::string message, Finish(smime, env, cek));
    return WriteOutput(o.io.out, message);
  }
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
    return OpenMessage(one, message);
  };
  BL_TRY_ASSIGN(ReopenCounts counts, ReopenMaildir(o.maildir, is_candidate, open_into));
  std::fprintf(stderr, "blindlist: %s: %d opened, %d still encrypted (kept), %d other messages\n",
               o.maildir.c_str(), counts.opened, counts.failed, counts.skipped);
  if (counts.failed > 0) {
    return MakeError("tempfail", std::to_string(counts.failed) +
                                     " post(s) could not be opened now; run it again later");
  }
  return Status::Ok();
}

// As a delivery filter (Postfix, procmail, maildrop), mail must never be lost:
// whatever goes wrong, the original goes out unchanged and the exit status is 0;
// only when the message cannot even be read is it 75 (EX_TEMPFAIL: try later).
Status RunOpen(OpenOptions& o) {
  if (o.reopen || !o.maildir.empty()) return RunReopen(o);
  auto input = ReadInput(o.io.in);
  if (!input.ok()) {
    if (o.filter) return MakeError("tempfail", input.error().message);
    return input.error();
  }
  if (!o.filter) return OpenMessage(o, *input);
  o.splice_only = true;
  Status st = OpenMessage(o, *input);
  if (st.ok()) return st;
  std::fprintf(stderr, "blindlist: open --filter: %s; delivering the message unchanged\n",
               st.error().message.c_str());
  Status passed = WriteOutput(o.io.out, *input);
  if (!passed.ok()) return MakeError("tempfail", passed.error().message);
  return Status::Ok();
}

}  // namespace

void AddOpenCommand(CLI::App& app, Action* chosen) {
  auto o = std::make_shared<OpenOptions>();
  auto* cmd = app.add_subcommand("open", "Read list mail as a member, through the group server");
  AddIo(cmd, o->io);
  AddServerOptions(cmd, o->creds);
  cmd->add_option("--group", o->group, "The list address")->required();
  cmd->add_option("--method", o->method, "tls (F), rewrap (E), cert (G), blind, secret (S/B)")
      ->required()
      ->check(CLI::IsMember({"tls", "rewrap", "cert", "blind", "secret"}));
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
  cmd->add_flag("--filter", o->filter,
                "Delivery filter (Postfix, procmail, maildrop): like --splice-only, but on any "
                "failure write the message unchanged and exit 0 (75 if it cannot be read)");
  cmd->add_option("--maildir", o->maildir,
                  "With --reopen: the Maildir (with tmp/, new/, cur/) to search");
  cmd->add_flag("--reopen", o->reopen,
                "Open, in place, the posts of --group in --maildir that --filter passed through "
                "still encrypted (groupd was down); exit 75 if some still cannot be opened");
  cmd->callback([chosen, o] { *chosen = [o] { return RunOpen(*o); }; });
}

}  // namespace blindlist::cli
