// blindlist list: the exploder's lists and delivery lists, written straight to
// listd's database (--store URL, or [store] url of listd's TOML). Only `list sync`
// talks to groupd, as the list's exploder, to copy the roster's addresses: a delivery
// list is not the roster, and an address added here receives only ciphertext.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "api/config_file.h"
#include "blindlist/error_codes.h"
#include "commands.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "io.h"
#include "roster_sync.h"
#include "store/list_store.h"

namespace blindlist::cli {

using json = nlohmann::json;

namespace {

constexpr std::size_t kCertificateFileLimit = 1 << 20;
constexpr std::size_t kProgressEvery = 1000;

struct ListOptions {
  std::string store_url;
  std::string config_file;
  bool json_out = false;

  std::string address;
  std::string group;
  std::vector<std::string> certificate_files;
  std::string reading;
  std::string posting;
  std::string roster;
  std::string per_member_fallback;
  std::string member_clients;
  bool allow_plaintext = false;
  bool encrypted_only = false;
  bool require_aead = false;
  bool allow_cbc = false;
  std::string bounce_address;
  int bounce_threshold = 0;
  int bounce_stale_after = 0;
  std::string owner;
  bool force = false;  // a certificate that is not for the list address
  std::string description;
  // Which of the settings were given (`list set` changes only those).
  bool has_group = false, has_reading = false, has_posting = false, has_bounce_address = false,
       has_bounce_threshold = false, has_description = false, has_roster = false,
       has_bounce_stale_after = false, has_owner = false, has_per_member_fallback = false,
       has_member_clients = false;

  std::string certificate_file;  // certificate add
  std::vector<std::string> members;
  std::string import_file;
  bool progress = false;
  bool all = false;
};

// ---- helpers ----

Result<std::unique_ptr<store::ListStore>> OpenStore(const ListOptions& o) {
  std::string url = o.store_url;
  if (url.empty() && !o.config_file.empty()) {
    BL_TRY_ASSIGN(api::ConfigFile config, api::ConfigFile::Load(o.config_file));
    BL_TRY_ASSIGN(url, config.String("store", "url", ""));
    if (url.empty()) {
      return MakeError("usage", o.config_file + " has no [store] url (or give --store URL)");
    }
  }
  if (url.empty()) {
    return MakeError("usage", "give --store URL or --config listd.toml (the exploder's database)");
  }
  return store::OpenListStore(url);
}

Result<store::MailingList> MustFindList(store::ListStore& db, const std::string& address) {
  BL_TRY_ASSIGN(std::optional<store::MailingList> list, db.FindList(address));
  if (!list) return MakeError("not-found", "no list at " + address);
  return std::move(*list);
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string IsoTime(std::int64_t t) {
  const auto seconds = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// LIST-owner@DOMAIN, where mail for the owner is written (listd forwards it to --owner).
std::string OwnerAlias(const std::string& list_address) {
  const std::size_t at = list_address.rfind('@');
  if (at == std::string::npos) return list_address + "-owner";
  return list_address.substr(0, at) + "-owner" + list_address.substr(at);
}

std::string MemberState(const store::ListMember& m) {
  if (!m.enabled) return "disabled";
  if (m.probe == store::ProbeState::kSent) return "probing";
  if (m.probe == store::ProbeState::kWanted) return "probe due";
  return "enabled";
}

void Warn(const std::string& message) {
  std::fprintf(stderr, "blindlist: warning: %s\n", message.c_str());
}

// Reads a group certificate (PEM or DER). One that is not for the list address is refused
// (senders' clients would not encrypt to it) unless `force`; an expired one only warns.
Result<Bytes> LoadGroupCertificate(const std::string& path, const std::string& list_address,
                                   bool force) {
  BL_TRY_ASSIGN(std::string data, ReadInput(path, kCertificateFileLimit));
  auto cert = crypto::Certificate::Load(AsBytes(data));
  if (!cert.ok()) {
    return MakeError(cert.error().code, path + " is not a usable X.509 certificate (PEM or DER): " +
                                            cert.error().message);
  }
  const crypto::CertificateInfo info = crypto::DescribeCertificate(*cert);
  const std::string canonical = Lower(list_address);
  bool for_list = false;
  for (const std::string& email : info.emails) for_list = for_list || Lower(email) == canonical;
  if (!for_list) {
    std::string names;
    for (const std::string& email : info.emails) names += (names.empty() ? "" : ", ") + email;
    const std::string what = path + " is not for " + list_address +
                             " (its email addresses: " + (names.empty() ? "none" : names) +
                             "); senders' clients would not encrypt to it";
    if (!force) return MakeError("usage", what + " (--force to use it anyway)");
    Warn(what);
  }
  if (info.not_after < static_cast<std::int64_t>(std::time(nullptr))) {
    Warn(path + " expired on " + IsoTime(info.not_after));
  }
  return cert->Der();
}

// One list certificate as JSON and, with `text`, as `list show` prints it (made from the
// certificate itself, never read back from the JSON).
json CertificateJson(const Bytes& der, bool current, std::string* text = nullptr) {
  const std::string state = current ? "current" : "retired";
  json j = {{"state", state}};
  auto cert = crypto::Certificate::Load(der);
  if (!cert.ok()) {
    j["error"] = cert.error().message;
    if (text != nullptr) *text += "  " + state + "  (unreadable: " + cert.error().message + ")\n";
    return j;
  }
  const crypto::CertificateInfo info = crypto::DescribeCertificate(*cert);
  j["sha256"] = info.fingerprint_sha256;
  j["subject"] = cert->SubjectText();
  j["emails"] = info.emails;
  j["not_after"] = info.not_after;
  if (text != nullptr) {
    *text += "  " + state + "  sha256 " + info.fingerprint_sha256 + "\n           " +
             cert->SubjectText() + ", not after " + IsoTime(info.not_after) + "\n";
  }
  return j;
}

json ListJson(const store::MailingList& l) {
  json certs = json::array();
  for (std::size_t i = 0; i < l.certificates.size(); ++i) {
    certs.push_back(CertificateJson(l.certificates[i], i == 0));
  }
  return {{"address", l.address},
          {"group", l.group},
          {"description", l.description},
          {"reading", l.reading},
          {"posting", l.posting},
          {"roster", l.roster},
          {"per_member_fallback", l.per_member_fallback},
          {"member_clients", l.member_clients},
          {"encrypted_only", l.encrypted_only},
          {"require_aead", l.require_aead},
          {"bounce_address", l.bounce_address},
          {"bounce_threshold", l.bounce_threshold},
          {"bounce_stale_after_days", l.bounce_info_stale_after},
          {"owner", l.owner},
          {"created_at", l.created_at},
          {"certificates", certs}};
}

Status Print(const ListOptions& o, const json& j, const std::string& text) {
  return WriteOutput("", o.json_out ? j.dump(2) + "\n" : text);
}

void WarnAboutReading(const std::string& reading) {
  if (reading == "path-b-prime") {
    Warn(
        "reading path-b-prime: the exploder re-wraps posts with a local copy of the group private "
        "key, so it can read the list; this breaks the trust split");
  }
}

void WarnIfFollowsGroupd(const store::MailingList& l) {
  if (l.roster == "groupd") {
    Warn(l.address +
         " follows groupd's roster (roster = groupd): the next sync undoes changes made here; "
         "add or remove the member on groupd (blindlist admin member ...)");
  }
}

// Applies the settings flags given on the command line to `list`.
Status ApplySettings(const ListOptions& o, store::MailingList& list) {
  if (o.has_group) list.group = o.group;
  if (o.has_reading) list.reading = o.reading;
  if (o.has_posting) list.posting = o.posting;
  if (o.has_roster) list.roster = o.roster;
  if (o.has_per_member_fallback) list.per_member_fallback = o.per_member_fallback;
  if (o.has_member_clients) list.member_clients = o.member_clients;
  if (o.allow_plaintext && o.encrypted_only) {
    return MakeError("usage", "--allow-plaintext and --encrypted-only contradict each other");
  }
  if (o.allow_plaintext) list.encrypted_only = false;
  if (o.encrypted_only) list.encrypted_only = true;
  if (o.require_aead && o.allow_cbc) {
    return MakeError("usage", "--require-aead and --allow-cbc contradict each other");
  }
  if (o.require_aead) list.require_aead = true;
  if (o.allow_cbc) list.require_aead = false;
  if (o.has_bounce_address) list.bounce_address = o.bounce_address;
  if (o.has_bounce_threshold) list.bounce_threshold = o.bounce_threshold;
  if (o.has_bounce_stale_after) list.bounce_info_stale_after = o.bounce_stale_after;
  if (o.has_owner) {
    list.owner = o.owner;  // "" goes back to no owner
    const std::string owner = Lower(o.owner);
    if (!owner.empty() &&
        (owner == Lower(list.address) || owner == Lower(OwnerAlias(list.address)) ||
         owner == Lower(list.bounce_address.empty() ? store::DefaultBounceAddress(list.address)
                                                    : list.bounce_address))) {
      return MakeError("usage", "--owner " + o.owner +
                                    " is an address of the list itself: "
                                    "mail to the owner would loop; give a person's address");
    }
  }
  if (o.has_description) list.description = o.description;
  if (!o.certificate_files.empty()) {
    list.certificates.clear();
    for (const std::string& path : o.certificate_files) {
      BL_TRY_ASSIGN(Bytes der, LoadGroupCertificate(path, list.address, o.force));
      list.certificates.push_back(std::move(der));
    }
  }
  return Status::Ok();
}

// ---- lists ----

Status Create(ListOptions& o) {
  if (!store::IsValidMailbox(o.address)) {
    return MakeError("usage", "\"" + o.address + "\" is not a list address (local@domain)");
  }
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  store::MailingList list;
  list.address = store::CanonicalMailbox(o.address);
  BL_TRY(ApplySettings(o, list));
  WarnAboutReading(list.reading);
  BL_TRY_ASSIGN(store::MailingList created, db->CreateList(list));
  return Print(o, ListJson(created),
               "created " + created.address + " (group " + created.group + ", bounces to " +
                   created.bounce_address + ")\n");
}

Status Delete(ListOptions& o) {
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  BL_TRY(db->DeleteList(o.address));
  return Print(o, {{"deleted", store::CanonicalMailbox(o.address)}},
               "deleted " + store::CanonicalMailbox(o.address) + " and its delivery list\n");
}

Status Show(ListOptions& o) {
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  BL_TRY_ASSIGN(store::MailingList l, MustFindList(*db, o.address));
  BL_TRY_ASSIGN(store::MemberCounts counts, db->CountMembersByState(l.id));
  BL_TRY_ASSIGN(std::vector<store::ListMember> disabled, db->ListDisabledMembers(l.id));
  json j = ListJson(l);
  j["members"] = {{"enabled", counts.enabled}, {"disabled", counts.disabled}};
  json dj = json::array();
  for (const store::ListMember& m : disabled) {
    dj.push_back(
        {{"address", m.address}, {"reason", m.disabled_reason}, {"bounce_score", m.bounce_score}});
  }
  j["disabled"] = dj;

  std::string t;
  t += "list:         " + l.address + "\n";
  t += "group:        " + l.group + "\n";
  if (!l.description.empty()) t += "description:  " + l.description + "\n";
  t += "reading:      " + l.reading +
       (l.reading == "path-b-prime" ? "  (the exploder holds the group key)" : "") + "\n";
  if (l.reading == "per-member") {
    t += "per member:   a member without a certificate " +
         std::string(l.per_member_fallback == "skip" ? "gets nothing" : "gets the group's copy") +
         "\n";
  }
  t += "clients:      " +
       std::string(l.member_clients == "nss"
                       ? "nss (Thunderbird): AES-CBC EnvelopedData, RSA PKCS#1 v1.5"
                       : "any") +
       "\n";
  t += "posting:      " + l.posting + "\n";
  t += "roster:       " + l.roster +
       (l.roster == "groupd" ? "  (the delivery list follows groupd's roster)" : "") + "\n";
  t += std::string("plaintext:    ") + (l.encrypted_only ? "refused" : "accepted") + "\n";
  t += std::string("ciphers:      ") +
       (l.require_aead ? "AuthEnvelopedData (AES-GCM) only; CBC refused"
                       : "AuthEnvelopedData (AES-GCM) and EnvelopedData (AES-CBC)") +
       "\n";
  t += "bounces:      " + l.bounce_address + ", disable after " +
       std::to_string(l.bounce_threshold) + " (a probe first), a score forgotten after " +
       std::to_string(l.bounce_info_stale_after) + " days\n";
  t += "owner:        " +
       (l.owner.empty() ? "none set (mail to " + OwnerAlias(l.address) + " is refused)"
                        : l.owner + " (mail to " + OwnerAlias(l.address) + " goes there)") +
       "\n";
  t += "created:      " + IsoTime(l.created_at) + "\n";
  t += "certificates:\n";
  for (std::size_t i = 0; i < l.certificates.size(); ++i) {
    CertificateJson(l.certificates[i], i == 0, &t);
  }
  t += "members:      " + std::to_string(counts.enabled) + " enabled, " +
       std::to_string(counts.disabled) + " disabled\n";
  for (const store::ListMember& m : disabled) {
    t += "  disabled  " + m.address + "  " + m.disabled_reason + "\n";
  }
  // Every member with a bounce score or a probe: the score, the last bounce, the state.
  BL_TRY_ASSIGN(std::vector<store::ListMember> all, db->ListMembers(l.id, false));
  json bj = json::array();
  std::string bt;
  for (const store::ListMember& m : all) {
    if (m.bounce_score == 0 && m.enabled && m.probe == store::ProbeState::kNone) continue;
    const std::string state = MemberState(m);
    bj.push_back({{"address", m.address},
                  {"bounce_score", m.bounce_score},
                  {"last_bounce_at", m.last_bounce_at},
                  {"state", state},
                  {"probe_at", m.probe_at}});
    bt += "  " + m.address + "  score " + std::to_string(m.bounce_score) + "/" +
          std::to_string(l.bounce_threshold) +
          (m.last_bounce_at != 0 ? ", last bounce " + IsoTime(m.last_bounce_at) : "") + ", " +
          state + (m.probe == store::ProbeState::kSent ? " since " + IsoTime(m.probe_at) : "") +
          "\n";
  }
  j["bouncing"] = bj;
  if (!bt.empty()) t += "bounce scores:\n" + bt;
  return Print(o, j, t);
}

Status ListAll(ListOptions& o) {
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  BL_TRY_ASSIGN(std::vector<store::MailingList> lists, db->ListLists());
  json out = json::array();
  std::string t;
  for (const store::MailingList& l : lists) {
    BL_TRY_ASSIGN(store::MemberCounts counts, db->CountMembersByState(l.id));
    out.push_back({{"address", l.address},
                   {"group", l.group},
                   {"reading", l.reading},
                   {"roster", l.roster},
                   {"members", {{"enabled", counts.enabled}, {"disabled", counts.disabled}}}});
    t += l.address + "  group " + l.group + "  reading " + l.reading + "  roster " + l.roster +
         "  members " + std::to_string(counts.enabled) + " enabled, " +
         std::to_string(counts.disabled) + " disabled\n";
  }
  if (lists.empty()) t = "no lists\n";
  return Print(o, {{"lists", out}}, t);
}

json ChangeJson(const std::string& address, const store::RosterChange& c) {
  return {{"list", address},
          {"added", c.added},
          {"removed", c.removed},
          {"unchanged", c.unchanged},
          {"skipped", c.skipped}};
}

std::string ChangeText(const std::string& address, const store::RosterChange& c) {
  std::string t =
      address + ": " + std::to_string(c.added.size()) + " added, " +
      std::to_string(c.removed.size()) + " removed, " + std::to_string(c.unchanged) + " unchanged" +
      (c.skipped.empty() ? "" : ", " + std::to_string(c.skipped.size()) + " skipped") + "\n";
  for (const std::string& a : c.added) t += "  + " + a + "\n";
  for (const std::string& a : c.removed) t += "  - " + a + "\n";
  for (const std::string& a : c.skipped) t += "  ! " + a + " (not deliverable: skipped)\n";
  return t;
}

// Roster sync on demand, with listd's own configuration: its database and its exploder identity.
Status Sync(ListOptions& o) {
  if (o.config_file.empty()) {
    return MakeError("usage",
                     "list sync needs --config listd.toml: its [groupd] section names groupd and "
                     "the exploder's client certificate");
  }
  BL_TRY_ASSIGN(listd::Config config, listd::LoadConfig(o.config_file));
  if (o.store_url.empty()) o.store_url = config.store_url;
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  std::vector<store::MailingList> lists;
  if (!o.address.empty()) {
    BL_TRY_ASSIGN(store::MailingList l, MustFindList(*db, o.address));
    lists.push_back(std::move(l));
  } else {
    BL_TRY_ASSIGN(std::vector<store::MailingList> all, db->ListLists());
    for (auto& l : all) {
      if (l.roster == "groupd") lists.push_back(std::move(l));
    }
  }
  auto source = listd::MakeGroupdRosterSource(config.groupd);
  json out = json::array();
  std::string t;
  std::optional<Error> failed;
  for (const store::MailingList& l : lists) {
    auto change = listd::SyncRoster(*db, l, *source, nullptr);
    if (!change.ok()) {
      out.push_back({{"list", l.address}, {"error", change.error().message}});
      t += l.address + ": not synced: " + change.error().message + "\n";
      if (!failed) failed = change.error();
      continue;
    }
    out.push_back(ChangeJson(l.address, *change));
    t += ChangeText(l.address, *change);
  }
  if (lists.empty()) t = "no list follows groupd's roster (list set LIST --roster groupd)\n";
  // A failure prints nothing on standard output: the report of the others goes to stderr.
  if (failed && lists.size() == 1) return *failed;
  if (failed) {
    std::fputs(t.c_str(), stderr);
    return MakeError("sync-failed", "some lists were not synced (see above)");
  }
  return Print(o, {{"synced", out}}, t);
}

Status Set(ListOptions& o) {
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  BL_TRY_ASSIGN(store::MailingList l, MustFindList(*db, o.address));
  BL_TRY(ApplySettings(o, l));
  if (o.has_reading) WarnAboutReading(l.reading);
  BL_TRY(db->UpdateList(l));
  BL_TRY_ASSIGN(l, MustFindList(*db, o.address));
  return Print(o, ListJson(l), "updated " + l.address + "\n");
}

Status CertificateAdd(ListOptions& o) {
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  BL_TRY_ASSIGN(store::MailingList l, MustFindList(*db, o.address));
  BL_TRY_ASSIGN(Bytes der, LoadGroupCertificate(o.certificate_file, l.address, o.force));
  for (const Bytes& existing : l.certificates) {
    if (existing == der) {
      return MakeError("exists", o.certificate_file + " is already a certificate of " + l.address);
    }
  }
  // The rotated key becomes current; the old ones stay accepted for posts in flight.
  l.certificates.insert(l.certificates.begin(), std::move(der));
  BL_TRY(db->UpdateList(l));
  return Print(o, ListJson(l),
               o.certificate_file + " is now the current certificate of " + l.address + "; " +
                   std::to_string(l.certificates.size() - 1) + " older one(s) still accepted\n");
}

// ---- delivery lists ----

Status CheckMembers(const std::vector<std::string>& members) {
  for (const std::string& m : members) {
    if (!store::IsValidMailbox(m)) {
      return MakeError("usage", "\"" + m + "\" is not a mailbox (local@domain); nothing changed");
    }
  }
  return Status::Ok();
}

Status MemberAdd(ListOptions& o) {
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  BL_TRY_ASSIGN(store::MailingList l, MustFindList(*db, o.address));
  WarnIfFollowsGroupd(l);
  BL_TRY(CheckMembers(o.members));
  json added = json::array();
  json skipped = json::array();
  std::string text;
  for (const std::string& m : o.members) {
    Status s = db->AddMember(l.id, m);
    if (!s.ok() && s.error().code != errc::kExists) return s.error();
    const std::string canonical = store::CanonicalMailbox(m);
    (s.ok() ? added : skipped).push_back(canonical);
    text += s.ok() ? "added " + canonical + "\n" : canonical + " is already on the list\n";
  }
  return Print(o, {{"list", l.address}, {"added", added}, {"already", skipped}}, text);
}

Status MemberRemove(ListOptions& o) {
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  BL_TRY_ASSIGN(store::MailingList l, MustFindList(*db, o.address));
  WarnIfFollowsGroupd(l);
  // All or nothing for typos: check every address is on the list before removing any.
  std::string missing;
  for (const std::string& m : o.members) {
    BL_TRY_ASSIGN(std::optional<store::ListMember> found, db->FindMember(l.id, m));
    if (!found) missing += (missing.empty() ? "" : ", ") + m;
  }
  if (!missing.empty()) {
    return MakeError("not-found", "not on " + l.address + ": " + missing + "; nothing removed");
  }
  json removed = json::array();
  std::string text;
  for (const std::string& m : o.members) {
    BL_TRY(db->RemoveMember(l.id, m));
    removed.push_back(store::CanonicalMailbox(m));
    text += "removed " + store::CanonicalMailbox(m) + "\n";
  }
  return Print(o, {{"list", l.address}, {"removed", removed}}, text);
}

Status MemberEnable(ListOptions& o) {
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  BL_TRY_ASSIGN(store::MailingList l, MustFindList(*db, o.address));
  const std::string& m = o.members.front();
  Status s = db->EnableMember(l.id, m);
  if (!s.ok() && s.error().code == errc::kNotFound) {
    return MakeError("not-found", m + " is not on " + l.address);
  }
  if (!s.ok()) return s;
  return Print(o, {{"list", l.address}, {"enabled", store::CanonicalMailbox(m)}},
               "enabled " + store::CanonicalMailbox(m) + " (bounce score reset)\n");
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// The address on an import line: blank lines and "# ..." comments are nothing,
// and a comment may follow the address after white space (as `export --all` writes).
std::string_view ImportLineAddress(std::string_view line) {
  line = Trim(line);
  if (line.empty() || line.front() == '#') return {};
  const std::size_t space = line.find_first_of(" \t");
  if (space != std::string_view::npos && Trim(line.substr(space)).starts_with('#')) {
    return line.substr(0, space);
  }
  return line;
}

struct ImportCounts {
  std::int64_t lines = 0;
  std::int64_t added = 0;
  std::int64_t skipped = 0;  // already on the list, or repeated in the file
  std::int64_t bad = 0;
};

Status MemberImport(ListOptions& o) {
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  BL_TRY_ASSIGN(store::MailingList l, MustFindList(*db, o.address));
  WarnIfFollowsGroupd(l);
  std::ifstream file;
  if (o.import_file != "-") {
    file.open(o.import_file, std::ios::binary);
    if (!file) return MakeError("io", "cannot open " + o.import_file);
  }
  std::istream& in = o.import_file == "-" ? std::cin : file;
  const bool progress = o.progress || ::isatty(STDERR_FILENO) == 1;
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  const std::string own = Lower(l.address);
  const std::string own_bounces = Lower(l.bounce_address);

  ImportCounts n;
  std::vector<std::string> batch;
  std::set<std::string, std::less<>> seen;  // repeats within the file are skipped here
  const auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    auto added = db->AddMembers(l.id, batch);
    if (!added.ok()) {
      return MakeError(added.error().code, added.error().message + " (" + std::to_string(n.added) +
                                               " addresses were imported before this)");
    }
    n.added += *added;
    n.skipped += static_cast<std::int64_t>(batch.size()) - *added;
    batch.clear();
    return Status::Ok();
  };
  std::string line;
  while (std::getline(in, line)) {
    ++n.lines;
    const std::string_view address = ImportLineAddress(line);
    if (!address.empty()) {
      const std::string canonical = store::CanonicalMailbox(address);
      std::string reason;
      if (!store::IsValidMailbox(address)) {
        reason = "not a mailbox (local@domain)";
      } else if (Lower(canonical) == own || Lower(canonical) == own_bounces) {
        reason = "the list's own address (it would loop)";
      }
      if (!reason.empty()) {
        ++n.bad;
        std::fprintf(stderr, "%s:%lld: %s\n", o.import_file.c_str(),
                     static_cast<long long>(n.lines), reason.c_str());
      } else if (!seen.insert(canonical).second) {
        ++n.skipped;
      } else {
        batch.push_back(canonical);
      }
    }
    if (batch.size() >= store::ListStore::kAddMembersChunk) BL_TRY(flush());
    if (progress && n.lines % kProgressEvery == 0) {
      std::fprintf(stderr, "%s%s: %lld lines, %lld added%s", terminal ? "\r" : "",
                   o.import_file.c_str(), static_cast<long long>(n.lines),
                   static_cast<long long>(n.added), terminal ? "" : "\n");
    }
  }
  if (in.bad()) return MakeError("io", "cannot read " + o.import_file);
  BL_TRY(flush());
  if (progress && terminal && n.lines >= static_cast<std::int64_t>(kProgressEvery)) {
    std::fprintf(stderr, "\n");
  }
  const json j = {{"list", l.address},
                  {"lines", n.lines},
                  {"added", n.added},
                  {"skipped", n.skipped},
                  {"bad", n.bad}};
  BL_TRY(Print(o, j,
               l.address + ": " + std::to_string(n.added) + " added, " + std::to_string(n.skipped) +
                   " skipped (already on the list), " + std::to_string(n.bad) + " bad\n"));
  if (n.bad > 0) {
    return MakeError("bad-input", o.import_file + ": " + std::to_string(n.bad) +
                                      " bad line(s) not imported; the others were");
  }
  return Status::Ok();
}

Status MemberExport(ListOptions& o) {
  BL_TRY_ASSIGN(auto db, OpenStore(o));
  BL_TRY_ASSIGN(store::MailingList l, MustFindList(*db, o.address));
  BL_TRY_ASSIGN(std::vector<store::ListMember> members, db->ListMembers(l.id, !o.all));
  if (o.json_out) {
    json j = json::array();
    for (const store::ListMember& m : members) {
      j.push_back({{"address", m.address},
                   {"enabled", m.enabled},
                   {"bounce_score", m.bounce_score},
                   {"disabled_reason", m.disabled_reason},
                   {"added_at", m.added_at}});
    }
    return WriteOutput("", j.dump(2) + "\n");
  }
  std::string text;
  text.reserve(members.size() * 32);
  for (const store::ListMember& m : members) {
    text += m.address;
    // A comment, so the output imports again (as enabled members).
    if (!m.enabled) text += "  # disabled: " + m.disabled_reason;
    text += '\n';
  }
  return WriteOutput("", text);
}

// The settings flags shared by `create` and `set`.
void AddSettings(CLI::App* cmd, ListOptions& o, bool create) {
  auto* group =
      cmd->add_option("--group", o.group, "The group on groupd whose certificate the list uses");
  if (create) group->required();
  auto* cert = cmd->add_option("--certificate", o.certificate_files,
                               create ? "Group certificate, PEM or DER (repeat: current first, "
                                        "then retired ones)"
                                      : "Replace the certificates (repeat: current first)");
  if (create) cert->required();
  cmd->add_option("--reading", o.reading,
                  "direct (forward as received), path-b (groupd re-wraps to the group secret), "
                  "per-member (groupd re-wraps to each member's registered certificate: members "
                  "read with their own S/MIME client) or path-b-prime (listd holds the group key: "
                  "dangerous)")
      ->check(CLI::IsMember({"direct", "path-b", "path-b-prime", "per-member"}));
  cmd->add_option("--per-member-fallback", o.per_member_fallback,
                  "per-member: a member without a registered certificate gets the post as sent "
                  "to the group (group, the default) or nothing (skip)")
      ->check(CLI::IsMember({"group", "skip"}));
  cmd->add_option("--member-clients", o.member_clients,
                  "What the members read with: any (the default) or nss (Thunderbird: posts must "
                  "be AES-CBC EnvelopedData, and RSA members get PKCS#1 v1.5 key transport)")
      ->check(CLI::IsMember({"any", "nss"}));
  cmd->add_option("--posting", o.posting, "members (senders must be enabled members) or open")
      ->check(CLI::IsMember({"members", "open"}));
  cmd->add_option("--roster", o.roster,
                  "manual (the delivery list is kept with `list member`; the default) or groupd "
                  "(listd copies the group's roster from groupd: `list sync`)")
      ->check(CLI::IsMember({"manual", "groupd"}));
  cmd->add_flag("--allow-plaintext", o.allow_plaintext, "Forward plaintext posts too");
  if (!create) {
    cmd->add_flag("--encrypted-only", o.encrypted_only, "Refuse plaintext posts again");
  }
  cmd->add_flag("--require-aead", o.require_aead,
                "Take only AuthEnvelopedData (RFC 5083, AES-GCM) posts; refuse EnvelopedData "
                "(AES-CBC), whose ciphertext can be altered undetected (EFAIL). Off by default: "
                "Thunderbird sends AES-CBC");
  if (!create) {
    cmd->add_flag("--allow-cbc", o.allow_cbc,
                  "Take EnvelopedData (AES-CBC) posts again (undoes --require-aead)");
  }
  cmd->add_option("--bounce-address", o.bounce_address,
                  "Envelope sender of forwarded posts (default LOCAL-bounces@DOMAIN)");
  cmd->add_option("--bounce-threshold", o.bounce_threshold,
                  "Hard bounces after which a member is disabled (default 5)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--bounce-stale-after", o.bounce_stale_after,
                  "Days after which a member's last bounce is forgotten and an unanswered probe "
                  "lapses (default 7)")
      ->check(CLI::Range(1, 3650));
  cmd->add_option("--owner", o.owner,
                  "The owner's address: mail to LIST-owner@ is forwarded there, and it is told "
                  "of refused posts and disabled members (\"\" for none: LIST-owner@ is refused)");
  cmd->add_flag("--force", o.force,
                "Use a certificate that is not for the list address (senders' clients would not "
                "encrypt to it)");
  cmd->add_option("--description", o.description, "A line describing the list");
}

// Records which settings were given, once CLI11 has parsed them.
void NoteGivenSettings(CLI::App* cmd, ListOptions& o) {
  o.has_group = cmd->count("--group") > 0;
  o.has_reading = cmd->count("--reading") > 0;
  o.has_posting = cmd->count("--posting") > 0;
  o.has_roster = cmd->count("--roster") > 0;
  o.has_per_member_fallback = cmd->count("--per-member-fallback") > 0;
  o.has_member_clients = cmd->count("--member-clients") > 0;
  o.has_bounce_address = cmd->count("--bounce-address") > 0;
  o.has_bounce_threshold = cmd->count("--bounce-threshold") > 0;
  o.has_description = cmd->count("--description") > 0;
  o.has_bounce_stale_after = cmd->count("--bounce-stale-after") > 0;
  o.has_owner = cmd->count("--owner") > 0;
}

}  // namespace

void AddListCommands(CLI::App& app, Action* chosen) {
  auto o = std::make_shared<ListOptions>();
  auto* list = app.add_subcommand(
      "list", "Administer the exploder's lists and delivery lists (listd's database)");
  list->require_subcommand(1);
  // --store, --config and --json may also follow the subcommand.
  list->fallthrough();
  list->add_option("--store", o->store_url,
                   "listd's database: sqlite:PATH or postgresql://... (wins over --config)");
  list->add_option("--config", o->config_file, "listd's TOML config, for its [store] url")
      ->check(CLI::ExistingFile);
  list->add_flag("--json", o->json_out, "Print JSON");

  auto bind = [chosen, o](CLI::App* cmd, Status (*fn)(ListOptions&), bool settings = false) {
    cmd->callback([chosen, o, fn, cmd, settings] {
      if (settings) NoteGivenSettings(cmd, *o);
      *chosen = [o, fn] { return fn(*o); };
    });
  };

  auto* create = list->add_subcommand("create", "Create a list");
  create->add_option("address", o->address, "The list address")->required();
  AddSettings(create, *o, true);
  bind(create, Create, true);

  auto* lists = list->add_subcommand(
      "list", "Every list: group, reading, roster and enabled/disabled member counts");
  bind(lists, ListAll);

  auto* sync = list->add_subcommand(
      "sync",
      "Copy groupd's roster into a list's delivery list now (roster = groupd); reports "
      "the added, removed and unchanged addresses. Needs --config listd.toml");
  sync->add_option("address", o->address,
                   "The list address (default: every list with roster = groupd)");
  bind(sync, Sync);

  auto* del = list->add_subcommand("delete", "Delete a list with its delivery list");
  del->add_option("address", o->address, "The list address")->required();
  bind(del, Delete);

  auto* show = list->add_subcommand(
      "show", "Settings, certificates, member counts and the disabled members with their reasons");
  show->add_option("address", o->address, "The list address")->required();
  bind(show, Show);

  auto* set = list->add_subcommand("set", "Change a list's settings");
  set->add_option("address", o->address, "The list address")->required();
  AddSettings(set, *o, false);
  bind(set, Set, true);

  auto* certificate = list->add_subcommand("certificate", "The list's group certificates");
  certificate->require_subcommand(1);
  auto* cert_add = certificate->add_subcommand(
      "add", "Add a rotated group certificate: it becomes current, older ones stay accepted");
  cert_add->add_option("address", o->address, "The list address")->required();
  cert_add->add_option("file", o->certificate_file, "The certificate, PEM or DER")->required();
  cert_add->add_flag("--force", o->force,
                     "Add a certificate that is not for the list address (senders' clients "
                     "would not encrypt to it)");
  bind(cert_add, CertificateAdd);

  auto* member = list->add_subcommand("member", "The delivery list (not groupd's roster)");
  member->require_subcommand(1);
  auto* add = member->add_subcommand("add", "Add members");
  add->add_option("address", o->address, "The list address")->required();
  add->add_option("members", o->members, "Member addresses")->required();
  bind(add, MemberAdd);
  auto* remove = member->add_subcommand("remove", "Remove members (all of them, or none)");
  remove->add_option("address", o->address, "The list address")->required();
  remove->add_option("members", o->members, "Member addresses")->required();
  bind(remove, MemberRemove);
  auto* enable = member->add_subcommand("enable", "Re-enable a disabled member (score reset)");
  enable->add_option("address", o->address, "The list address")->required();
  enable->add_option("member", o->members, "The member's address")->required()->expected(1);
  bind(enable, MemberEnable);
  auto* import = member->add_subcommand(
      "import", "Add members from a file: one address a line, # comments and blank lines skipped");
  import->add_option("address", o->address, "The list address")->required();
  import->add_option("--file", o->import_file, "The file (- for standard input)")->required();
  import->add_flag(
      "--progress", o->progress,
      "Report progress on stderr every 1,000 lines (default when stderr is a terminal)");
  bind(import, MemberImport);
  auto* exp = member->add_subcommand("export", "Print the enabled members, one a line");
  exp->add_option("address", o->address, "The list address")->required();
  exp->add_flag("--all", o->all, "Disabled members too, marked with a # comment");
  bind(exp, MemberExport);
}

}  // namespace blindlist::cli
