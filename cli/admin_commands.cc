// blindlist admin: groups, keys, members, the exploder and the audit, on groupd.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "api/groupd_client.h"
#include "api/json_fields.h"
#include "blindlist/base64.h"
#include "blindlist/error_codes.h"
#include "commands.h"
#include "crypto/keys.h"
#include "crypto/threshold.h"
#include "io.h"
#include "server_options.h"

namespace blindlist::cli {

using json = nlohmann::json;

namespace {
// --token-file's path for each command's credentials (ApiCredentials, shared with the daemons,
// holds only the token itself). std::map keeps the strings where CLI11 writes them.
std::string& TokenFileOf(const api::ApiCredentials& creds) {
  static std::map<const api::ApiCredentials*, std::string> files;
  return files[&creds];
}
}  // namespace

void AddServerOptions(CLI::App* cmd, api::ApiCredentials& creds, bool server_required,
                      std::vector<std::string>* servers) {
  auto* server =
      servers != nullptr
          ? cmd->add_option("--server", *servers,
                            "Server URL, e.g. https://groupd.example.org:8443 (threshold: one "
                            "--server per node)")
          : cmd->add_option("--server", creds.server,
                            "Server URL, e.g. https://groupd.example.org:8443");
  if (server_required) server->required();
  cmd->add_option("--token", creds.token,
                  "Bearer token (or set BLINDLIST_TOKEN). Visible to every local user in ps: "
                  "prefer --token-file");
  cmd->add_option("--token-file", TokenFileOf(creds),
                  "File whose first line is the bearer token (mode 0600); not with --token");
  cmd->add_option("--client-cert", creds.client_cert_file, "Client certificate for mTLS (PEM)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--client-key", creds.client_key_file, "Client private key for mTLS (PEM)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ca", creds.ca_file, "CA certificate(s) that verify the server (PEM)")
      ->check(CLI::ExistingFile);
}

Status FinishServerOptions(api::ApiCredentials& creds) {
  if (const std::string& file = TokenFileOf(creds); !file.empty()) {
    if (!creds.token.empty()) return MakeError("usage", "--token and --token-file: give one");
    BL_TRY_ASSIGN(std::string text, ReadInput(file, 4096));
    const std::size_t end = text.find_first_of("\r\n");
    creds.token = text.substr(0, end);
    std::fill(text.begin(), text.end(), '\0');
    if (creds.token.empty()) return MakeError("usage", file + ": no token on its first line");
  }
  if (creds.token.empty()) {
    if (const char* env = std::getenv("BLINDLIST_TOKEN")) creds.token = env;
  }
  if (creds.client_cert_file.empty() != creds.client_key_file.empty()) {
    return MakeError("usage", "--client-cert and --client-key go together");
  }
  return Status::Ok();
}

namespace {

struct AdminState {
  api::ApiCredentials creds;
  std::string group;
  std::string address;
  std::string key_type = "rsa3072";
  std::string rotate_key_type;  // empty: the server keeps the group's current key type
  bool csr = false;
  bool secret = false;
  bool token = false;
  bool json_out = false;
  std::string cert_file;
  std::string cipher;  // group set-cipher
  std::string out;
  std::string passphrase_file;
  int version = 0;
  int limit = 100;
  std::int64_t before = 0;  // audit paging: records older than this id
  std::int64_t since = 0;   // audit window, Unix seconds
  std::int64_t until = 0;
  std::string reason;
  std::string prune_before;        // audit prune: YYYY-MM-DD, an ISO 8601 UTC time, or Unix seconds
  int threshold = 0;               // p256-threshold: k
  std::vector<std::string> nodes;  // p256-threshold: the n groupd nodes, in share order
  int index = 0;                   // replace-node: the index of the node replaced
  std::string new_node;            // replace-node: the new node's URL
  std::string transcript;          // replace-node, create --dkg: where to save what was relayed
  bool dkg = false;                // create p256-threshold by a key generation, without a dealer
  std::string dkg_round;           // dkg-cancel: the round id (32 hex digits) a node shows
  bool yes = false;                // group delete
};

// The one line for a reply of groupd without a field this command reads, or with one of another
// type (an older or newer server): its fault, named with the route, never an internal error here.
Error BadReply(const std::string& route, const std::string& field) {
  return MakeError(std::string(errc::kBadReply),
                   "groupd's reply to " + route + " has no field \"" + field +
                       "\" of the type this command reads (a server of another version?)");
}

// One reply of groupd and the route that gave it ("GET /v1/groups/NAME"), read field by field
// (api/json_fields.h), never by exception: a field missing or of another type reads as "", 0,
// false or [], and the first such field is kept, so that Check() refuses the reply before
// anything is printed or written.
class Reply {
 public:
  Reply(json body, std::string route) : body_(std::move(body)), route_(std::move(route)) {}

  const json& body() const { return body_; }
  bool Has(const char* name) const { return Has(body_, name); }
  static bool Has(const json& object, const char* name) {
    return object.is_object() && object.contains(name);
  }
  // Present and not null: a field groupd sends as null when there is nothing to say.
  static bool Given(const json& object, const char* name) {
    return Has(object, name) && !object.find(name)->is_null();
  }

  std::string Text(const char* name) { return Text(body_, name); }
  std::string Text(const json& object, const char* name) {
    return Noted(api::StringField(object, name), name).value_or("");
  }
  std::int64_t Integer(const char* name) { return Integer(body_, name); }
  std::int64_t Integer(const json& object, const char* name) {
    return Noted(api::IntegerField(object, name), name).value_or(0);
  }
  // An integer groupd may leave out: `absent` then (present with another type is refused).
  std::int64_t Integer(const json& object, const char* name, std::int64_t absent) {
    return Has(object, name) ? Integer(object, name) : absent;
  }
  // An integer that fits an int (a version, an index, k, n); a larger one is of another type.
  int Int(const char* name) { return Int(body_, name); }
  int Int(const json& object, const char* name) {
    auto v = api::IntegerField(object, name);
    if (v && (*v < INT_MIN || *v > INT_MAX)) v.reset();
    return static_cast<int>(Noted(v, name).value_or(0));
  }
  bool Flag(const json& object, const char* name) {
    return Noted(api::BoolField(object, name), name).value_or(false);
  }
  const json& Array(const char* name) { return Array(body_, name); }
  const json& Array(const json& object, const char* name) {
    const json* array = api::ArrayField(object, name);
    if (array == nullptr) Note(name);
    return array != nullptr ? *array : empty_;
  }

  const json& Object(const json& object, const char* name) {
    const json* found = api::ObjectField(object, name);
    if (found == nullptr) Note(name);
    return found != nullptr ? *found : empty_object_;
  }
  // A field that is present with the wrong contents (read by hand).
  void Refuse(const char* name) { Note(name); }

  Status Check() const {
    if (missing_.empty()) return Status::Ok();
    return BadReply(route_, missing_);
  }

 private:
  template <typename T>
  std::optional<T> Noted(std::optional<T> v, const char* name) {
    if (!v) Note(name);
    return v;
  }
  void Note(const char* name) {
    if (missing_.empty()) missing_ = name;
  }

  json body_;
  std::string route_;
  std::string missing_;  // the first field read that was missing or of another type
  json empty_ = json::array();
  json empty_object_ = json::object();
};

// JSON text for the user; a string from the command line that is not UTF-8 is shown with
// U+FFFD rather than thrown on (replies are UTF-8: the parser refuses anything else).
std::string Dump(const json& j, int indent = 2) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

Status Print(const AdminState& s, const json& j, const std::string& text) {
  return WriteOutput(s.out, s.json_out ? Dump(j) + "\n" : text);
}

// Prints a reply of groupd: as it came (--json) or as `text`, but neither if the reply lacked
// a field `text` was made of.
Status Print(const AdminState& s, const Reply& r, const std::string& text) {
  BL_TRY(r.Check());
  return Print(s, r.body(), text);
}

Result<std::string> ReadPem(const std::string& path) { return ReadInput(path, 1 << 20); }

Result<Reply> Call(AdminState& s, const std::string& method, const std::string& path,
                   const json& body) {
  // Commands over several nodes (--nodes) name them there; every other command needs --server.
  if (s.creds.server.empty()) return MakeError("usage", "--server is required");
  BL_TRY(FinishServerOptions(s.creds));
  api::ApiClient client(s.creds);
  BL_TRY_ASSIGN(json r, client.Call(method, path, body));
  return Reply(std::move(r), method + " " + path.substr(0, path.find('?')));
}

std::string G(const AdminState& s) { return "/v1/groups/" + api::ApiClient::Segment(s.group); }

// The dealer (docs/threshold.md): the weaker first step before a distributed key generation.
// The key exists only here, for the length of this function: it is made, split into n Shamir
// shares with Feldman commitments, each node gets its own share (node 1 issues the group
// certificate for the committed key, the others check and store that certificate), and the key
// and shares are wiped when their SecretBytes go out of scope.
Status GroupCreateThreshold(AdminState& s) {
  namespace th = crypto::threshold;
  const int n = static_cast<int>(s.nodes.size());
  if (s.threshold < 2 || s.threshold > n || n > th::kMaxNodes)
    return MakeError("usage",
                     "p256-threshold needs --threshold K and --nodes with 2 <= K <= n <= 16");
  if (s.csr) return MakeError("usage", "--csr does not apply to p256-threshold groups");
  BL_TRY(FinishServerOptions(s.creds));
  th::Dealing dealing;
  {
    BL_TRY_ASSIGN(crypto::PrivateKey key, crypto::PrivateKey::Generate(crypto::KeyType::kEcP256));
    BL_TRY_ASSIGN(SecretBytes scalar, th::ScalarOf(key));
    BL_TRY_ASSIGN(dealing, th::Split(scalar, s.threshold, n));
  }
  const std::string commitments = Base64Encode(th::EncodeCommitments(dealing.commitments));
  std::string certificate;
  json nodes = json::array();
  for (int i = 0; i < n; ++i) {
    const std::string& url = s.nodes[static_cast<std::size_t>(i)];
    api::ApiCredentials creds = s.creds;
    creds.server = url;
    const SecretBytes share = th::EncodeShare(dealing.shares[static_cast<std::size_t>(i)]);
    json body = {{"name", s.group},
                 {"key_type", "p256-threshold"},
                 {"share", Base64Encode(share.view())},
                 {"commitments", commitments}};
    if (!certificate.empty()) body["certificate"] = certificate;
    api::ApiClient client(creds);
    auto r = client.Call("POST", "/v1/groups", body);
    crypto::threshold::WipeText(body["share"].get_ref<std::string&>());
    // Node 1 issues the certificate the others check: without it, stop where node 1 stands.
    std::optional<Error> failed;
    if (!r.ok()) failed = r.error();
    if (r.ok() && i == 0) {
      auto issued = api::StringField(*r, "certificate");
      if (!issued || issued->empty()) failed = BadReply("POST /v1/groups", "certificate");
      if (issued) certificate = std::move(*issued);
    }
    if (failed) {
      const int holding = r.ok() ? i + 1 : i;  // the nodes that hold the group now
      std::string message = "node " + std::to_string(i + 1) + " (" + url + "): ";
      message += failed->message;
      if (holding == 0) message += "; no node holds the group";
      if (holding > 0) {
        message += "; the group exists on ";
        for (int j = 0; j < holding; ++j) {
          if (j > 0) message += ", ";
          message += s.nodes[static_cast<std::size_t>(j)];
        }
        message += " only: delete it there (`blindlist admin group delete " + s.group;
        message += " --yes --server URL` for each) and create it again";
      }
      return MakeError(failed->code, message);
    }
    nodes.push_back(
        {{"node", url},
         {"index", i + 1},
         {"public_share", Base64Encode(dealing.public_shares[static_cast<std::size_t>(i)])}});
  }
  json out = {{"name", s.group},
              {"key_type", "p256-threshold"},
              {"key_version", 1},
              {"threshold", s.threshold},
              {"nodes", nodes},
              {"commitments", commitments},
              {"certificate", certificate}};
  if (s.json_out) return Print(s, out, "");
  std::fprintf(stderr, "created %s on %d nodes, any %d of which can read; the key is wiped\n",
               s.group.c_str(), n, s.threshold);
  return WriteOutput(s.out, certificate, kPublicFileMode);
}

// A node's public threshold state (`group show`): its index, k, n and commitments.
struct NodeState {
  std::string url;
  int index = 0;
  int k = 0;
  int n = 0;
  std::string commitments;
};

// The node's active threshold key, read field by field: a reply without one of these fields, or
// with one of another type, is bad-reply (naming it), not a node holding index 0.
Result<NodeState> ReadNodeState(const AdminState& s, const std::string& url) {
  api::ApiCredentials creds = s.creds;
  creds.server = url;
  api::ApiClient client(creds);
  auto r = client.Call("GET", G(s), nullptr);
  if (!r.ok()) return MakeError(r.error().code, url + ": " + r.error().message);
  Reply reply(std::move(*r), "GET " + G(s) + " at " + url);
  for (const auto& key : reply.Array("keys")) {
    if (!key.is_object() || !key.contains("threshold") || reply.Text(key, "state") != "active")
      continue;
    const json* t = api::ObjectField(key, "threshold");
    if (t == nullptr) return BadReply("GET " + G(s) + " at " + url, "threshold");
    NodeState st{url, reply.Int(*t, "index"), reply.Int(*t, "k"), reply.Int(*t, "n"),
                 reply.Text(*t, "commitments")};
    BL_TRY(reply.Check());
    return st;
  }
  BL_TRY(reply.Check());
  return MakeError("not-threshold-group", url + ": no active threshold key");
}

// One node's step of a refresh: d_i += delta_i, from the commitments `from` to `to`.
Result<json> RefreshNode(const AdminState& s, const std::string& url,
                         const crypto::threshold::Share& delta, const std::string& from,
                         const std::string& to) {
  const SecretBytes encoded = crypto::threshold::EncodeShare(delta);
  api::ApiCredentials creds = s.creds;
  creds.server = url;
  api::ApiClient client(creds);
  json body = {{"share", Base64Encode(encoded.view())}, {"previous", from}, {"commitments", to}};
  auto r = client.Call("POST", G(s) + "/threshold/refresh", body);
  crypto::threshold::WipeText(body["share"].get_ref<std::string&>());
  return r;
}

// The commitments a node holds now ("" if it cannot say).
std::string NodeCommitments(const AdminState& s, const std::string& url) {
  auto st = ReadNodeState(s, url);
  return st.ok() ? st->commitments : "";
}

// A refresh that failed at node `failed`: every node already refreshed (those before it, and
// the failed one if it did apply the step and only the answer was lost) is refreshed back by
// the negated shares, so all nodes end on the old commitments, as before the command. What
// could not be rolled back is named; a rerun then refuses (409) until that node is back, and
// the same command, run again with it up, refreshes from there.
Status RollBackRefresh(const AdminState& s, std::size_t failed, const Error& why,
                       const std::vector<int>& index, const crypto::threshold::Dealing& zero,
                       const std::string& previous, const std::string& commitments) {
  namespace th = crypto::threshold;
  std::vector<std::size_t> to_undo;
  for (std::size_t i = 0; i < failed; ++i) to_undo.push_back(i);
  if (NodeCommitments(s, s.nodes[failed]) == commitments) to_undo.push_back(failed);
  json rolled_back = json::array();
  json stuck = json::array();
  for (std::size_t i : to_undo) {
    auto negated = th::NegateShare(zero.shares[static_cast<std::size_t>(index[i] - 1)]);
    auto r = negated.ok() ? RefreshNode(s, s.nodes[i], *negated, commitments, previous)
                          : Result<json>(negated.error());
    (r.ok() ? rolled_back : stuck).push_back(s.nodes[i]);
  }
  std::string message = s.nodes[failed] + ": " + why.message +
                        "; the refresh is rolled back: no node keeps the new shares";
  if (!rolled_back.empty()) message += "; rolled back: " + Dump(rolled_back, -1);
  if (!stuck.empty()) {
    message = s.nodes[failed] + ": " + why.message + "; rolled back: " + Dump(rolled_back, -1) +
              "; NOT rolled back (still on the new shares, which no longer combine with the "
              "others'): " +
              Dump(stuck, -1) +
              " (reads need k nodes on one side; replace those nodes, see docs/threshold.md)";
  }
  return MakeError(why.code, message);
}

// A refresh (proactive resharing, docs/threshold.md): every node adds its share of a random
// polynomial with f(0) = 0, so the key and the certificate stay, and shares taken before the
// refresh no longer combine with those after it. The command never sees the key or any share.
Status GroupRefreshShares(AdminState& s) {
  namespace th = crypto::threshold;
  if (s.nodes.size() < 2) return MakeError("usage", "refresh-shares needs --nodes (every node)");
  BL_TRY(FinishServerOptions(s.creds));
  // Where each node stands: its index, k, n and commitments (all must agree).
  std::vector<int> index(s.nodes.size());
  std::string previous;
  int k = 0;
  int n = 0;
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    BL_TRY_ASSIGN(NodeState t, ReadNodeState(s, s.nodes[i]));
    index[i] = t.index;
    if (i == 0) {
      previous = t.commitments;
      k = t.k;
      n = t.n;
    } else if (t.commitments != previous || t.k != k || t.n != n) {
      return MakeError(std::string(errc::kConflict),
                       s.nodes[i] + " holds other commitments than " + s.nodes[0] +
                           ": finish or repair the last refresh first");
    }
  }
  if (n != static_cast<int>(s.nodes.size()))
    return MakeError("usage", "--nodes must list all " + std::to_string(n) + " nodes");
  Bytes previous_bytes;
  if (!Base64Decode(previous, previous_bytes)) return MakeError("bad-reply", "commitments");
  BL_TRY_ASSIGN(std::vector<Bytes> old_commitments, th::ParseCommitments(previous_bytes, k));
  BL_TRY_ASSIGN(th::Dealing zero, th::SplitZero(k, n));
  BL_TRY_ASSIGN(std::vector<Bytes> fresh, th::AddCommitments(old_commitments, zero.commitments));
  const std::string commitments = Base64Encode(th::EncodeCommitments(fresh));
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    if (index[i] < 1 || index[i] > n) return MakeError("bad-reply", s.nodes[i] + ": bad index");
  }
  json done = json::array();
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    const th::Share& delta = zero.shares[static_cast<std::size_t>(index[i] - 1)];
    auto r = RefreshNode(s, s.nodes[i], delta, previous, commitments);
    if (!r.ok()) return RollBackRefresh(s, i, r.error(), index, zero, previous, commitments);
    done.push_back(s.nodes[i]);
  }
  json out = {{"name", s.group}, {"refreshed", done}, {"commitments", commitments}};
  if (s.json_out) return Print(s, out, "");
  std::fprintf(stderr, "refreshed the shares of %s on %zu nodes\n", s.group.c_str(),
               s.nodes.size());
  return Status::Ok();
}

// What the replacement relays, kept for --transcript: every request and answer, as sent.
struct Relay {
  const AdminState& s;
  json transcript = json::array();

  Result<json> Call(const std::string& url, const std::string& path, const json& body,
                    const std::string& step) {
    api::ApiCredentials creds = s.creds;
    creds.server = url;
    api::ApiClient client(creds);
    auto r = client.Call("POST", path, body);
    transcript.push_back({{"node", url},
                          {"path", path},
                          {"request", body},
                          {"answer", r.ok() ? *r : json(r.error().message)}});
    if (!r.ok()) return MakeError(r.error().code, step + " at " + url + ": " + r.error().message);
    return r;
  }
};

// The helpers (k nodes holding shares, all on the same commitments, none holding index j).
Result<std::vector<NodeState>> RepairHelpers(const AdminState& s) {
  std::vector<NodeState> all;
  for (const std::string& url : s.nodes) {
    BL_TRY_ASSIGN(NodeState st, ReadNodeState(s, url));
    if (!all.empty() &&
        (st.commitments != all[0].commitments || st.k != all[0].k || st.n != all[0].n)) {
      return MakeError(std::string(errc::kConflict),
                       url + " holds other commitments than " + all[0].url +
                           ": the helpers must be on the same shares (finish or repair the last "
                           "refresh first)");
    }
    if (st.index == s.index) {
      return MakeError("usage", url + " holds index " + std::to_string(s.index) +
                                    " itself: list only the helpers, not the node replaced");
    }
    all.push_back(std::move(st));
  }
  if (all.empty() || static_cast<int>(all.size()) < all[0].k) {
    return MakeError("too-few-helpers",
                     "a replacement needs k = " + std::to_string(all.empty() ? 2 : all[0].k) +
                         " helpers (nodes holding "
                         "shares), " +
                         std::to_string(all.size()) + " given");
  }
  if (s.index < 1 || s.index > all[0].n) {
    return MakeError("usage",
                     "--index must be the replaced node's index, 1.." + std::to_string(all[0].n));
  }
  all.resize(static_cast<std::size_t>(all[0].k));
  std::sort(all.begin(), all.end(),
            [](const NodeState& a, const NodeState& b) { return a.index < b.index; });
  return all;
}

// A node replacement (share repair, docs/threshold.md): k helpers give the new node f(j) without
// anyone else learning it. This command only relays sealed messages between them: it never sees
// a piece, a sum or a share in the clear.
Status GroupReplaceNode(AdminState& s) {
  if (s.new_node.empty()) return MakeError("usage", "replace-node needs --new URL");
  BL_TRY(FinishServerOptions(s.creds));
  BL_TRY_ASSIGN(std::vector<NodeState> helpers, RepairHelpers(s));
  api::ApiCredentials creds = s.creds;
  creds.server = helpers[0].url;
  api::ApiClient first(creds);
  BL_TRY_ASSIGN(std::string certificate, first.GetText(G(s) + "/certificate"));
  const SecretBytes round_bytes = crypto::RandomSecret(16);
  json round = {{"round", ToHex(round_bytes.view())}, {"index", s.index}};
  round["helpers"] = json::array();
  for (const NodeState& h : helpers) round["helpers"].push_back(h.index);
  Relay relay{s};
  json enroll = round;
  enroll["name"] = s.group;
  // Each answer relayed is read field by field first (Reply): a field missing stops the relay.
  auto at = [](const std::string& path, const std::string& url) {
    return "POST " + path + " at " + url;
  };
  BL_TRY_ASSIGN(json enrolled, relay.Call(s.new_node, "/v1/threshold/enroll", enroll, "enroll"));
  Reply started(std::move(enrolled), at("/v1/threshold/enroll", s.new_node));
  round["new_key"] = started.Text("key");
  const std::string new_state = started.Text("state");
  BL_TRY(started.Check());
  // Step 1: each helper's round key, signed with its share.
  json keys = json::array();
  std::vector<std::string> states;
  for (const NodeState& h : helpers) {
    const std::string path = G(s) + "/threshold/repair/key";
    BL_TRY_ASSIGN(json answer, relay.Call(h.url, path, round, "repair key"));
    Reply r(std::move(answer), at(path, h.url));
    keys.push_back(
        {{"index", r.Int("index")}, {"key", r.Text("key")}, {"signature", r.Text("signature")}});
    states.push_back(r.Text("state"));
    BL_TRY(r.Check());
  }
  round["keys"] = keys;
  round["commitments"] = helpers[0].commitments;
  // Step 2: each helper's pieces, sealed to their recipients; step 3: each helper's sum of the
  // pieces sent to it, sealed to the new node.
  std::map<int, json> pieces_to;
  for (std::size_t i = 0; i < helpers.size(); ++i) {
    json body = round;
    body["state"] = states[i];
    const std::string path = G(s) + "/threshold/repair/split";
    BL_TRY_ASSIGN(json answer, relay.Call(helpers[i].url, path, body, "repair split"));
    Reply r(std::move(answer), at(path, helpers[i].url));
    const int from = r.Int("index");
    for (const auto& p : r.Array("pieces"))
      pieces_to[r.Int(p, "to")].push_back({{"from", from}, {"piece", r.Text(p, "piece")}});
    BL_TRY(r.Check());
  }
  json sums = json::array();
  for (std::size_t i = 0; i < helpers.size(); ++i) {
    json body = round;
    body["state"] = states[i];
    body["pieces"] = pieces_to[helpers[i].index];
    const std::string path = G(s) + "/threshold/repair/sum";
    BL_TRY_ASSIGN(json answer, relay.Call(helpers[i].url, path, body, "repair sum"));
    Reply r(std::move(answer), at(path, helpers[i].url));
    sums.push_back({{"from", r.Int("index")}, {"sum", r.Text("sum")}});
    BL_TRY(r.Check());
  }
  // The new node opens the sums, checks f(j)·G against the commitments and stores its share.
  json enrollment = round;
  enrollment.erase("commitments");
  enrollment["state"] = new_state;
  enrollment["sums"] = sums;
  enrollment["threshold"] = helpers[0].k;
  enrollment["nodes"] = helpers[0].n;
  json create = {{"name", s.group},
                 {"key_type", "p256-threshold"},
                 {"certificate", certificate},
                 {"commitments", helpers[0].commitments},
                 {"enrollment", enrollment}};
  auto created = relay.Call(s.new_node, "/v1/groups", create, "enrollment");
  if (!s.transcript.empty()) BL_TRY(WriteOutput(s.transcript, Dump(relay.transcript) + "\n"));
  if (!created.ok()) return created.error();
  // The new node stored its share: its public share is shown as it came ("" if it sent none).
  json out = {{"name", s.group},
              {"index", s.index},
              {"node", s.new_node},
              {"helpers", round["helpers"]},
              {"public_share", api::StringField(*created, "public_share").value_or("")}};
  if (s.json_out) return Print(s, out, "");
  std::fprintf(stderr,
               "%s now holds share %d of %s (same group certificate). Add the group's members "
               "there, and give members the new node list. The replaced node's share still "
               "works: run refresh-shares over the new nodes to retire it.\n",
               s.new_node.c_str(), s.index, s.group.c_str());
  return Status::Ok();
}

// The nodes of a key generation that stored the group, as the failure message names them.
std::string StoredOn(const std::vector<std::string>& stored, const std::string& group) {
  if (stored.empty()) return "; no node stored the group";
  std::string list;
  for (const auto& url : stored) list += (list.empty() ? "" : ", ") + url;
  return "; the group is stored on " + list + " only: delete it there (`blindlist admin group " +
         "delete " + group + " --yes --server URL` for each) and create it again";
}

// A key generation's relay: every answer read field by field (Reply) before anything of it is
// relayed on; a field missing or of another type stops the round.
struct DkgRelay {
  const AdminState& s;
  Relay& relay;
  std::vector<std::string>& started;
  json view;

  std::string Path(const char* step) const { return G(s) + "/threshold/dkg/" + step; }
  Result<Reply> Call(std::size_t i, const char* step, const json& body) {
    BL_TRY_ASSIGN(json answer,
                  relay.Call(s.nodes[i], Path(step), body, std::string("dkg ") + step));
    return Reply(std::move(answer), "POST " + Path(step) + " at " + s.nodes[i]);
  }
  std::string Node(std::size_t i) const {
    return "node " + std::to_string(i + 1) + " (" + s.nodes[i] + ")";
  }
};

// Round 1: every node's start answer (relayed without its sealed state, which goes back to it
// alone); `states` gets the states.
Status DkgStarts(DkgRelay& d, std::vector<std::string>& states) {
  json starts = json::array();
  for (std::size_t i = 0; i < d.s.nodes.size(); ++i) {
    json body = d.view;
    body["index"] = i + 1;
    BL_TRY_ASSIGN(Reply r, d.Call(i, "start", body));
    d.started.push_back(d.s.nodes[i]);
    starts.push_back({{"index", r.Int("index")},
                      {"key", r.Text("key")},
                      {"commitments", r.Text("commitments")},
                      {"signature", r.Text("signature")},
                      {"certificate", r.Text("certificate")}});
    states.push_back(r.Text("state"));
    BL_TRY(r.Check());
  }
  d.view["starts"] = starts;
  return Status::Ok();
}

// Round 2: each node deals on this one view and signs its digest; `pieces_to` gets the sealed
// pieces by recipient.
Status DkgDeals(DkgRelay& d, const std::vector<std::string>& states,
                std::map<int, json>& pieces_to) {
  json deals = json::array();
  for (std::size_t i = 0; i < d.s.nodes.size(); ++i) {
    json body = d.view;
    body["index"] = i + 1;
    body["state"] = states[i];
    BL_TRY_ASSIGN(Reply r, d.Call(i, "deal", body));
    const int from = r.Int("index");
    deals.push_back({{"index", from}, {"signature", r.Text("signature")}});
    for (const auto& p : r.Array("pieces"))
      pieces_to[r.Int(p, "to")].push_back({{"from", from}, {"piece", r.Text(p, "piece")}});
    BL_TRY(r.Check());
  }
  d.view["deals"] = deals;
  return Status::Ok();
}

// Round 3: every node checks the pieces dealt to it and signs an accept; nobody stores yet. A node
// that finds a piece off its dealer's commitments is believed by nobody: without a verifiable
// complaint, the accuser or the accused is faulty, and the operator is told so.
Status DkgChecks(DkgRelay& d, const std::vector<std::string>& states,
                 std::map<int, json>& pieces_to) {
  json accepts = json::array();
  for (std::size_t i = 0; i < d.s.nodes.size(); ++i) {
    json body = d.view;
    body["index"] = i + 1;
    body["state"] = states[i];
    body["pieces"] = pieces_to[static_cast<int>(i + 1)];
    auto checked = d.Call(i, "check", body);
    if (!checked.ok() && checked.error().code == "bad-share") {
      // The accuser's message names the accused: "node I (URL) dealt a piece ...".
      const std::string& m = checked.error().message;
      const auto dealt = m.find(" dealt a piece");
      const auto named = dealt == std::string::npos ? dealt : m.rfind("node ", dealt);
      const std::string dealer =
          named == std::string::npos ? "another node" : m.substr(named, dealt - named);
      return MakeError("bad-share",
                       d.Node(i) + " says " + dealer +
                           " dealt a piece that does not match its commitments: one of the two is "
                           "faulty (this command cannot tell which)");
    }
    BL_TRY_ASSIGN(Reply r, std::move(checked));
    accepts.push_back({{"index", r.Int("index")}, {"signature", r.Text("signature")}});
    BL_TRY(r.Check());
  }
  d.view["accepts"] = accepts;
  return Status::Ok();
}

// A creation without a dealer (docs/threshold.md, "distributed key generation"): each node draws
// its own polynomial; this command relays the four rounds (start, deal, check, finish) and sees
// round keys, signatures, commitments, sealed pieces and sealed states only: no piece, no share,
// no key. A node stores only with every node's accept. `started` collects the nodes that keep the
// round (to cancel it there if it fails).
Result<json> RunDkg(const AdminState& s, const json& round, Relay& relay,
                    std::vector<std::string>& started, std::vector<std::string>& stored) {
  DkgRelay d{s, relay, started, round};
  std::vector<std::string> states;
  BL_TRY(DkgStarts(d, states));
  std::map<int, json> pieces_to;
  BL_TRY(DkgDeals(d, states, pieces_to));
  BL_TRY(DkgChecks(d, states, pieces_to));
  // Round 4: node 1 issues the group certificate for C_0; the others check its key is their C_0.
  std::string certificate;
  std::string commitments;
  json nodes = json::array();
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    json body = d.view;
    body["index"] = i + 1;
    if (i > 0) body["certificate"] = certificate;
    BL_TRY_ASSIGN(Reply r, d.Call(i, "finish", body));
    stored.push_back(s.nodes[i]);
    if (i == 0) {
      certificate = r.Text("certificate");
      commitments = r.Text("commitments");
    }
    const std::string summed = r.Text("commitments");
    nodes.push_back(
        {{"node", s.nodes[i]}, {"index", i + 1}, {"public_share", r.Text("public_share")}});
    BL_TRY(r.Check());
    if (summed != commitments) {
      return MakeError(std::string(errc::kConflict),
                       s.nodes[i] + " summed other commitments than " + s.nodes[0]);
    }
  }
  return json{{"name", s.group},
              {"key_type", "p256-threshold"},
              {"key_version", 1},
              {"threshold", s.threshold},
              {"nodes", nodes},
              {"commitments", commitments},
              {"certificate", certificate}};
}

// A key generation's node URL: https://HOST[:PORT], nothing after it (not even "/"): the nodes
// sign and compare the URLs as given.
bool DkgNodeUrl(const std::string& url) {
  constexpr std::string_view kScheme = "https://";
  if (!url.starts_with(kScheme) || url.size() == kScheme.size()) return false;
  const std::string rest = url.substr(kScheme.size());
  // A host name, or an IPv6 literal in brackets, and a port: nothing else (the nodes refuse it).
  return std::all_of(rest.begin(), rest.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("-.:[]").find(c) != std::string_view::npos;
  });
}

// A failed round cancelled at the nodes that keep it and did not store the group (one round per
// group at a node at a time): "" if there were none, else what the operator reads.
std::string CancelRound(const AdminState& s, const json& round, Relay& relay,
                        const std::vector<std::string>& started,
                        const std::vector<std::string>& stored) {
  std::string cancelled;
  std::string kept;
  for (std::size_t i = 0; i < started.size(); ++i) {
    if (std::find(stored.begin(), stored.end(), started[i]) != stored.end()) continue;
    json body = round;
    body["index"] = i + 1;
    auto r = relay.Call(started[i], G(s) + "/threshold/dkg/cancel", body, "dkg cancel");
    std::string& list = r.ok() ? cancelled : kept;
    list += (list.empty() ? "" : ", ") + started[i];
  }
  std::string out;
  if (!cancelled.empty()) out += "; round cancelled at " + cancelled;
  if (!kept.empty())
    out += "; round NOT cancelled at " + kept + " (it expires there within the hour)";
  return out;
}

Status GroupCreateDkg(AdminState& s) {
  namespace th = crypto::threshold;
  const int n = static_cast<int>(s.nodes.size());
  if (s.threshold < 2 || s.threshold > n || n > th::kMaxNodes)
    return MakeError("usage", "--dkg needs --threshold K and --nodes with 2 <= K <= n <= 16");
  for (const std::string& url : s.nodes) {
    if (!DkgNodeUrl(url)) {
      return MakeError("usage",
                       "--nodes: " + url + " is not https://HOST[:PORT] (no path, no trailing /)");
    }
  }
  if (s.csr) return MakeError("usage", "--csr does not apply to p256-threshold groups");
  BL_TRY(FinishServerOptions(s.creds));
  Relay relay{s};
  std::vector<std::string> started;
  std::vector<std::string> stored;
  const SecretBytes round_bytes = crypto::RandomSecret(16);
  json round = {{"round", ToHex(round_bytes.view())}, {"threshold", s.threshold}};
  round["nodes"] = s.nodes;
  auto created = RunDkg(s, round, relay, started, stored);
  std::string cancelled;
  if (!created.ok()) cancelled = CancelRound(s, round, relay, started, stored);
  if (!s.transcript.empty()) BL_TRY(WriteOutput(s.transcript, relay.transcript.dump(2) + "\n"));
  if (!created.ok()) {
    return MakeError(created.error().code,
                     created.error().message + StoredOn(stored, s.group) + cancelled);
  }
  if (s.json_out) return Print(s, *created, "");
  std::fprintf(stderr,
               "created %s on %d nodes by a key generation, any %d of which can read; no party "
               "ever held the key\n",
               s.group.c_str(), n, s.threshold);
  return WriteOutput(s.out, api::StringField(*created, "certificate").value_or(""),
                     kPublicFileMode);
}

// A key generation round stuck at its nodes (its command was killed): forgotten at each node that
// keeps it, so the group can take a new round before the hour is up. Nothing else changes.
Status GroupDkgCancel(AdminState& s) {
  if (s.nodes.empty() || s.threshold < 2 || s.dkg_round.empty())
    return MakeError("usage", "dkg-cancel needs --round ID, --threshold K and --nodes URL,...");
  BL_TRY(FinishServerOptions(s.creds));
  Relay relay{s};
  json round = {{"round", s.dkg_round}, {"threshold", s.threshold}};
  round["nodes"] = s.nodes;
  std::string text;
  bool failed = false;
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    json body = round;
    body["index"] = i + 1;
    auto r = relay.Call(s.nodes[i], G(s) + "/threshold/dkg/cancel", body, "dkg cancel");
    text += s.nodes[i] + ": " + (r.ok() ? "cancelled" : r.error().message) + "\n";
    failed = failed || (!r.ok() && r.error().code != "dkg-no-round");
  }
  if (failed) return MakeError("dkg-cancel", "the round is not cancelled everywhere:\n" + text);
  return WriteOutput(s.out, text);
}

Status GroupDelete(AdminState& s) {
  if (!s.yes)
    return MakeError("usage", "group delete destroys the group's keys or share: add --yes");
  BL_TRY_ASSIGN(Reply r, Call(s, "DELETE", G(s), nullptr));
  return Print(s, r, "deleted " + s.group + " with its keys, secrets and roster\n");
}

Status GroupCreate(AdminState& s) {
  if (s.key_type == "p256-threshold" && s.dkg) return GroupCreateDkg(s);
  if (s.dkg || !s.transcript.empty())
    return MakeError("usage", "--dkg and --transcript are for --key-type p256-threshold");
  if (s.key_type == "p256-threshold") return GroupCreateThreshold(s);
  if (!s.nodes.empty() || s.threshold != 0)
    return MakeError("usage", "--nodes and --threshold are for --key-type p256-threshold");
  json body = {{"name", s.group}, {"key_type", s.key_type}, {"csr", s.csr}};
  BL_TRY_ASSIGN(Reply r, Call(s, "POST", "/v1/groups", body));
  const std::string pem = r.Has("csr") ? r.Text("csr") : r.Text("certificate");
  const int version = r.Int("key_version");
  BL_TRY(r.Check());
  if (s.json_out) return Print(s, r, "");
  std::fprintf(stderr, "created %s, key version %d%s\n", s.group.c_str(), version,
               s.csr ? " (CSR: have it signed, then `admin group install-cert`)" : "");
  return WriteOutput(s.out, pem, kPublicFileMode);
}

Status GroupRotate(AdminState& s) {
  json body = {{"what", s.secret ? "secret" : "key"}, {"csr", s.csr}};
  if (!s.secret && !s.rotate_key_type.empty()) body["key_type"] = s.rotate_key_type;
  BL_TRY_ASSIGN(Reply r, Call(s, "POST", G(s) + "/rotate", body));
  if (s.json_out) return Print(s, r, "");
  if (s.secret) {
    const int version = r.Int("secret_version");
    BL_TRY(r.Check());
    std::fprintf(stderr, "group secret is now version %d\n", version);
    return Status::Ok();
  }
  const int version = r.Int("key_version");
  const std::string pem = r.Has("csr") ? r.Text("csr") : r.Text("certificate");
  BL_TRY(r.Check());
  std::fprintf(stderr, "key version %d is now current; older versions stay usable for old posts\n",
               version);
  return WriteOutput(s.out, pem, kPublicFileMode);
}

Status GroupList(AdminState& s) {
  BL_TRY_ASSIGN(Reply r, Call(s, "GET", "/v1/groups", nullptr));
  std::string text;
  for (const auto& g : r.Array("groups")) {
    // A group without a current key has "key_version": null.
    const bool keyed = Reply::Given(g, "key_version");
    text += r.Text(g, "name") + "  " +
            (keyed ? r.Text(g, "key_type") + " v" + std::to_string(r.Int(g, "key_version"))
                   : std::string("(no current key)")) +
            "  " + std::to_string(r.Integer(g, "members", 0)) + " members\n";
  }
  if (r.Array("groups").empty()) text = "no groups\n";
  return Print(s, r, text);
}

Status GroupSetCipher(AdminState& s) {
  BL_TRY_ASSIGN(Reply r, Call(s, "PUT", G(s) + "/content-cipher", {{"content_cipher", s.cipher}}));
  return Print(s, r,
               "published content cipher of " + s.group + ": " + s.cipher +
                   " (with its certificate; blindlist post follows it)\n");
}

// A Unix time as an operator reads it: 2026-12-06 02:08:09 UTC.
std::string UtcTime(std::int64_t t) {
  const auto seconds = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text.data();
}

Status GroupShow(AdminState& s) {
  BL_TRY_ASSIGN(Reply r, Call(s, "GET", G(s), nullptr));
  // "exploder": null (or absent) when the group has none.
  const bool exploder = Reply::Given(r.body(), "exploder");
  std::string text =
      "group:    " + r.Text("name") + "\nmembers:  " + std::to_string(r.Int("members")) +
      "\nexploder: " + (exploder ? r.Text("exploder") : std::string("(none)")) + "\nkeys:\n";
  for (const auto& k : r.Array("keys")) {
    text += "  v" + std::to_string(r.Int(k, "version")) + "  " + r.Text(k, "key_type") + "  " +
            r.Text(k, "state") +
            (Reply::Has(k, "serial") ? "  serial " + r.Text(k, "serial") : "") + "\n";
  }
  text += "secrets:\n";
  for (const auto& v : r.Array("secrets")) {
    text += "  v" + std::to_string(r.Int(v, "version")) + "  id " + r.Text(v, "key_id") + "\n";
  }
  // A group made by a key generation: every round this node started for it (one, unless rounds
  // were thrown away and run again: docs/threshold.md).
  if (Reply::Given(r.body(), "dkg_rounds")) {
    const auto rounds = r.Array("dkg_rounds");
    if (!rounds.empty())
      text += "key generation rounds started here (every spelling, oldest first):\n";
    for (const auto& round : rounds) {
      const std::int64_t at = r.Integer(round, "started_at");
      const bool finished = r.Flag(round, "finished");
      const bool current = r.Flag(round, "current");
      text += "  " + r.Text(round, "round") + "  " +
              (at == 0 ? std::string("(time not kept)") : UtcTime(at)) + "  " +
              (current    ? "this group was stored from it"
               : finished ? "a group was stored from it (since deleted)"
                          : "ended without a group (cancelled, failed or expired)") +
              "\n";
    }
  }
  return Print(s, r, text);
}

Status GroupExport(AdminState& s) {
  if (s.out.empty() || s.out == "-")
    return MakeError("usage", "export-key writes a PKCS#12 file: give -o FILE.p12");
  BL_TRY_ASSIGN(std::string pass, ReadInput(s.passphrase_file, 4096));
  while (!pass.empty() && (pass.back() == '\n' || pass.back() == '\r')) pass.pop_back();
  json body = {{"passphrase", pass}, {"version", s.version}, {"reason", s.reason}};
  std::fill(pass.begin(), pass.end(), '\0');
  BL_TRY_ASSIGN(Reply r, Call(s, "POST", G(s) + "/export", body));
  const std::string pkcs12 = r.Text("pkcs12");
  const int version = r.Int("key_version");
  BL_TRY(r.Check());
  Bytes p12;
  if (!Base64Decode(pkcs12, p12)) return MakeError("bad-reply", "bad PKCS#12 in the reply");
  std::fprintf(
      stderr,
      "exported key version %d: whoever holds this file and passphrase reads the list (path C)\n",
      version);
  return WriteOutput(s.out, AsChars(p12));
}

Status GroupInstallCert(AdminState& s) {
  BL_TRY_ASSIGN(std::string pem, ReadPem(s.cert_file));
  BL_TRY_ASSIGN(Reply r,
                Call(s, "POST", G(s) + "/keys/" + std::to_string(s.version) + "/certificate",
                     {{"certificate", pem}}));
  return Print(s, r,
               "installed the certificate for key version " + std::to_string(s.version) + "\n");
}

Status GroupDestroyKey(AdminState& s) {
  BL_TRY_ASSIGN(Reply r, Call(s, "POST", G(s) + "/keys/" + std::to_string(s.version) + "/destroy",
                              json::object()));
  return Print(s, r,
               "destroyed key version " + std::to_string(s.version) +
                   ": posts wrapped to it are now unreadable\n");
}

Status MemberAdd(AdminState& s) {
  json body = {{"address", s.address}, {"token", s.token}};
  if (!s.cert_file.empty()) {
    BL_TRY_ASSIGN(std::string pem, ReadPem(s.cert_file));
    body["certificate"] = pem;
  }
  BL_TRY_ASSIGN(Reply r, Call(s, "POST", G(s) + "/members", body));
  std::string text = "added " + s.address + "\n";
  if (r.Has("token")) text += "token (shown once, keep it secret): " + r.Text("token") + "\n";
  return Print(s, r, text);
}

Status MemberRemove(AdminState& s) {
  BL_TRY_ASSIGN(
      Reply r, Call(s, "DELETE", G(s) + "/members/" + api::ApiClient::Segment(s.address), nullptr));
  return Print(s, r, "removed " + s.address + " (effective on the next request)\n");
}

Status MemberSetCert(AdminState& s) {
  BL_TRY_ASSIGN(std::string pem, ReadPem(s.cert_file));
  BL_TRY_ASSIGN(
      Reply r,
      Call(s, "PUT", G(s) + "/members/" + api::ApiClient::Segment(s.address) + "/certificate",
           {{"certificate", pem}}));
  return Print(s, r,
               "registered certificate " + r.Text("certificate_fingerprint").substr(0, 16) +
                   "... for " + s.address +
                   " (its membership certificates and token are unchanged)\n");
}

Status MemberNewToken(AdminState& s) {
  BL_TRY_ASSIGN(Reply r,
                Call(s, "POST", G(s) + "/members/" + api::ApiClient::Segment(s.address) + "/token",
                     json::object()));
  return Print(
      s, r,
      "token for " + s.address +
          " (shown once, keep it secret; the old one no longer works): " + r.Text("token") + "\n");
}

// "2026-01-31" (UTC midnight), "2026-01-31T12:00:00Z", or Unix seconds.
Result<std::int64_t> ParseDate(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos &&
      text.size() <= 12) {
    return std::stoll(text);
  }
  std::tm tm{};
  for (const char* format : {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"}) {
    tm = {};
    const char* end = strptime(text.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') return static_cast<std::int64_t>(timegm(&tm));
  }
  return MakeError("usage",
                   "--before takes YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC) or Unix "
                   "seconds, not \"" +
                       text + "\"");
}

Status AuditPrune(AdminState& s) {
  BL_TRY_ASSIGN(std::int64_t before, ParseDate(s.prune_before));
  BL_TRY_ASSIGN(Reply r, Call(s, "POST", "/v1/audit/prune", {{"before", before}}));
  return Print(s, r,
               "pruned " + std::to_string(r.Integer("pruned")) + " audit records older than " +
                   s.prune_before + "\n");
}

Status MemberList(AdminState& s) {
  BL_TRY_ASSIGN(Reply r, Call(s, "GET", G(s) + "/members", nullptr));
  std::string text;
  for (const auto& m : r.Array("members")) {
    const std::string fingerprint = r.Text(m, "certificate_fingerprint");
    text += r.Text(m, "address") + (r.Flag(m, "has_token") ? "  token" : "") +
            (fingerprint.empty() ? "" : "  cert " + fingerprint.substr(0, 16)) + "\n";
  }
  return Print(s, r, text);
}

Status ExploderSet(AdminState& s) {
  BL_TRY_ASSIGN(std::string pem, ReadPem(s.cert_file));
  BL_TRY_ASSIGN(Reply r, Call(s, "PUT", G(s) + "/exploder", {{"certificate", pem}}));
  return Print(s, r, "exploder set: " + r.Text("exploder") + "\n");
}

// A per-member re-wrap record's addresses by status ("members": {"ok": [...], ...}), as
// "  not-member: c; ok: a, b" (statuses in name order); empty for a record without them (every
// other operation).
std::string AuditMembersText(Reply& r, const json& record) {
  if (!Reply::Given(record, "members")) return {};
  std::string text;
  for (const auto& [status, addresses] : r.Object(record, "members").items()) {
    text += text.empty() ? "  " : "; ";
    text += status + ":";
    const char* sep = " ";
    if (!addresses.is_array()) r.Refuse(status.c_str());
    for (const auto& address : addresses.is_array() ? addresses : json::array()) {
      if (!address.is_string()) {
        r.Refuse(status.c_str());
        continue;
      }
      text += sep + address.get_ref<const std::string&>();
      sep = ", ";
    }
  }
  return text;
}

Status Audit(AdminState& s) {
  std::string query = "/audit?limit=" + std::to_string(s.limit);
  if (s.before > 0) query += "&before=" + std::to_string(s.before);
  if (s.since > 0) query += "&since=" + std::to_string(s.since);
  if (s.until > 0) query += "&until=" + std::to_string(s.until);
  // No group: every record of the store, each audit prune's among them.
  const std::string base = s.group.empty() ? std::string("/v1") : G(s);
  BL_TRY_ASSIGN(Reply r, Call(s, "GET", base + query, nullptr));
  std::string text;
  for (const auto& a : r.Array("audit")) {
    text += "#" + std::to_string(r.Integer(a, "id", 0)) + "  " +
            std::to_string(r.Integer(a, "time")) + "  " +
            (s.group.empty() ? (r.Text(a, "group").empty() ? "-" : r.Text(a, "group")) + "  "
                             : std::string()) +
            r.Text(a, "operation") + "  " + r.Text(a, "caller") + "  v" +
            std::to_string(r.Int(a, "key_version")) + "  " + r.Text(a, "result") + "  " +
            r.Text(a, "reason") + AuditMembersText(r, a) + "\n";
  }
  // "next_before": a record id when a full page may have more behind it, else null.
  if (auto next = api::IntegerField(r.body(), "next_before")) {
    text += "(more: --before " + std::to_string(*next) + ")\n";
  }
  return Print(s, r, text);
}

using Binder = std::function<void(CLI::App*, Status (*)(AdminState&))>;

// Threshold groups' own commands: share refresh and node replacement.
void AddThresholdCommands(CLI::App* group, const std::shared_ptr<AdminState>& s,
                          const Binder& bind) {
  auto* refresh = group->add_subcommand(
      "refresh-shares", "Threshold groups: new shares of the same key; old shares stop combining");
  refresh->add_option("name", s->group, "The list address")->required();
  refresh->add_option("--nodes", s->nodes, "Every node of the group, comma-separated")
      ->delimiter(',')
      ->required();
  bind(refresh, GroupRefreshShares);
  auto* replace = group->add_subcommand(
      "replace-node",
      "Threshold groups: give a new node the share of index J from k helpers (same group "
      "certificate); this command relays sealed messages only");
  replace->add_option("name", s->group, "The list address")->required();
  replace
      ->add_option("--nodes", s->nodes,
                   "The helpers: k or more nodes holding shares, comma-separated (the first k "
                   "are used)")
      ->delimiter(',')
      ->required();
  replace->add_option("--index", s->index, "The index of the node replaced (1..n)")->required();
  replace->add_option("--new", s->new_node, "The new node's URL (it must not hold the group)")
      ->required();
  replace->add_option("--transcript", s->transcript,
                      "Save every request and answer relayed (JSON) to this file");
  bind(replace, GroupReplaceNode);
}

void AddMemberCommands(CLI::App* admin, const std::shared_ptr<AdminState>& s, const Binder& bind) {
  auto* member = admin->add_subcommand("member", "The roster");
  member->require_subcommand(1);
  auto* add = member->add_subcommand(
      "add", "Add a member (with a certificate for paths E/F, a token for F/S/blind)");
  add->add_option("group", s->group, "The list address")->required();
  add->add_option("address", s->address, "The member's address")->required();
  add->add_option("--cert", s->cert_file, "The member's certificate (PEM)")
      ->check(CLI::ExistingFile);
  add->add_flag("--token", s->token, "Issue a bearer token (printed once)");
  bind(add, MemberAdd);
  auto* remove =
      member->add_subcommand("remove", "Remove a member: effective on the very next request");
  remove->add_option("group", s->group, "The list address")->required();
  remove->add_option("address", s->address, "The member's address")->required();
  bind(remove, MemberRemove);
  auto* set_cert = member->add_subcommand(
      "set-cert",
      "Replace a member's registered S/MIME certificate (renewal): the member stays, and so do "
      "its token and membership certificates");
  set_cert->add_option("group", s->group, "The list address")->required();
  set_cert->add_option("address", s->address, "The member's address")->required();
  set_cert->add_option("--cert", s->cert_file, "The member's new certificate (PEM)")
      ->required()
      ->check(CLI::ExistingFile);
  bind(set_cert, MemberSetCert);
  auto* new_token = member->add_subcommand(
      "new-token",
      "Issue a new bearer token (printed once); the old one stops working on the next request");
  new_token->add_option("group", s->group, "The list address")->required();
  new_token->add_option("address", s->address, "The member's address")->required();
  bind(new_token, MemberNewToken);
  auto* list = member->add_subcommand("list", "List the members");
  list->add_option("group", s->group, "The list address")->required();
  bind(list, MemberList);
}

}  // namespace

void AddAdminCommands(CLI::App& app, Action* chosen) {
  auto s = std::make_shared<AdminState>();
  auto* admin =
      app.add_subcommand("admin", "Administer groups, keys, members and the exploder on groupd");
  admin->require_subcommand(1);
  // The subcommands made below inherit this: --server, --json, -o ... may also follow them
  // (`admin group export-key LIST --passphrase-file F -o FILE.p12`).
  admin->fallthrough();
  // Not required here: the threshold commands take their nodes from --nodes (Call() asks for it).
  AddServerOptions(admin, s->creds, /*server_required=*/false);
  admin->add_flag("--json", s->json_out, "Print the server's JSON reply");
  admin->add_option("-o,--out", s->out, "Write to FILE instead of standard output");

  auto bind = [chosen, s](CLI::App* cmd, Status (*fn)(AdminState&)) {
    cmd->callback([chosen, s, fn] { *chosen = [s, fn] { return fn(*s); }; });
  };
  auto* group = admin->add_subcommand("group", "Groups and their keys");
  group->require_subcommand(1);
  auto* create = group->add_subcommand(
      "create", "Create a group: key pair, certificate (or CSR), group secret");
  create->add_option("name", s->group, "The list address")->required();
  create->add_option("--key-type", s->key_type, "rsa3072, p256 or p256-threshold")
      ->check(CLI::IsMember({"rsa3072", "p256", "p256-threshold"}))
      ->capture_default_str();
  create->add_option("--threshold", s->threshold,
                     "p256-threshold: how many nodes (k) must answer to read");
  create
      ->add_option("--nodes", s->nodes,
                   "p256-threshold: the groupd nodes, comma-separated (node i gets share i); "
                   "authenticate with an admin client certificate all of them list")
      ->delimiter(',');
  create->add_flag("--csr", s->csr, "Emit a CSR for an outside CA instead of a certificate");
  create->add_flag("--dkg", s->dkg,
                   "p256-threshold: the nodes generate the key among themselves (no dealer; every "
                   "node needs [threshold] node_ca_certificate)");
  create->add_option("--transcript", s->transcript,
                     "--dkg: save every request and answer relayed to FILE (JSON)");
  bind(create, GroupCreate);
  AddThresholdCommands(group, s, bind);
  auto* dkg_cancel = group->add_subcommand(
      "dkg-cancel",
      "Cancel a key generation round stuck at its nodes (409 dkg-in-progress names the round)");
  dkg_cancel->add_option("name", s->group, "The list address")->required();
  dkg_cancel->add_option("--round", s->dkg_round, "The round id (32 hex digits)")->required();
  dkg_cancel->add_option("--threshold", s->threshold, "The round's threshold (k)")->required();
  dkg_cancel->add_option("--nodes", s->nodes, "The round's nodes, comma-separated, in order")
      ->required()
      ->delimiter(',');
  bind(dkg_cancel, GroupDkgCancel);
  auto* gdelete = group->add_subcommand(
      "delete",
      "Delete a group on this node: its keys or share, secrets and roster (the clean-up of a "
      "threshold creation that failed midway)");
  gdelete->add_option("name", s->group, "The list address")->required();
  gdelete->add_flag("--yes", s->yes, "Yes: its keys are destroyed for good");
  bind(gdelete, GroupDelete);
  auto* rotate = group->add_subcommand(
      "rotate", "Add a key version (or with --secret, a group secret version)");
  rotate->add_option("name", s->group, "The list address")->required();
  rotate->add_flag("--secret", s->secret, "Rotate the group secret instead of the key pair");
  rotate
      ->add_option("--key-type", s->rotate_key_type,
                   "rsa3072 or p256 (default: the group's current type)")
      ->check(CLI::IsMember({"rsa3072", "p256"}));
  rotate->add_flag("--csr", s->csr, "Emit a CSR for an outside CA");
  bind(rotate, GroupRotate);
  auto* glist = group->add_subcommand(
      "list", "Every group with its key type, current key version and member count");
  bind(glist, GroupList);
  auto* set_cipher = group->add_subcommand(
      "set-cipher",
      "Publish what the members can read with the group certificate: any, aes-cbc (members "
      "read with NSS/Thunderbird) or aead; blindlist post follows it");
  set_cipher->add_option("name", s->group, "The list address")->required();
  set_cipher->add_option("cipher", s->cipher, "any, aes-cbc or aead")
      ->required()
      ->check(CLI::IsMember({"any", "aes-cbc", "aead"}));
  bind(set_cipher, GroupSetCipher);
  auto* show = group->add_subcommand("show", "Key versions, secrets, member count, exploder");
  show->add_option("name", s->group, "The list address")->required();
  bind(show, GroupShow);
  auto* exp =
      group->add_subcommand("export-key", "Export the group key as PKCS#12 for path C members");
  exp->add_option("name", s->group, "The list address")->required();
  exp->add_option("--passphrase-file", s->passphrase_file,
                  "File holding the PKCS#12 passphrase (- for stdin)")
      ->required();
  exp->add_option("--version", s->version, "Key version (default: the current one)");
  exp->add_option("--reason", s->reason, "Why (recorded in the audit)");
  bind(exp, GroupExport);
  auto* install = group->add_subcommand("install-cert",
                                        "Install the CA-signed certificate for a CSR key version");
  install->add_option("name", s->group, "The list address")->required();
  install->add_option("--version", s->version, "Key version")->required();
  install->add_option("--cert", s->cert_file, "Certificate (PEM)")
      ->required()
      ->check(CLI::ExistingFile);
  bind(install, GroupInstallCert);
  auto* destroy = group->add_subcommand(
      "destroy-key", "Destroy a retired key version (its posts become unreadable)");
  destroy->add_option("name", s->group, "The list address")->required();
  destroy->add_option("--version", s->version, "Key version")->required();
  bind(destroy, GroupDestroyKey);

  AddMemberCommands(admin, s, bind);

  auto* exploder = admin->add_subcommand("exploder", "The group's exploder identity");
  exploder->require_subcommand(1);
  auto* set =
      exploder->add_subcommand("set", "Register the exploder's client certificate (path B)");
  set->add_option("group", s->group, "The list address")->required();
  set->add_option("--cert", s->cert_file, "The exploder's certificate (PEM)")
      ->required()
      ->check(CLI::ExistingFile);
  bind(set, ExploderSet);

  auto* audit = admin->add_subcommand(
      "audit",
      "Show the group's audit log, newest first; with no group, every record of the store (each "
      "audit prune's too); or: audit prune --before DATE");
  audit->add_option("group", s->group, "The list address (none: every record)");
  audit->add_option("--limit", s->limit, "How many records (1..10000)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  audit
      ->add_option("--before", s->before,
                   "Only records older than this record id (the next page: the id it printed)")
      ->check(CLI::PositiveNumber);
  audit->add_option("--since", s->since, "Only records at or after this time (Unix seconds)")
      ->check(CLI::NonNegativeNumber);
  audit->add_option("--until", s->until, "Only records before this time (Unix seconds)")
      ->check(CLI::NonNegativeNumber);
  auto* prune = audit->add_subcommand(
      "prune", "Delete every group's audit records older than a date (the prune is audited)");
  prune
      ->add_option("--before", s->prune_before,
                   "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC) or Unix seconds")
      ->required();
  bind(prune, AuditPrune);
  // After prune's callback (CLI11 runs a parent's last): only a plain `audit GROUP` shows the log.
  audit->callback([chosen, s, prune] {
    if (prune->parsed()) return;
    *chosen = [s] { return Audit(*s); };
  });
}

}  // namespace blindlist::cli
