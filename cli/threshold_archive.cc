#include "threshold_archive.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "blindlist/error_codes.h"
#include "crypto/cms.h"
#include "io.h"
#include "mime/smime.h"

namespace blindlist::cli {
namespace {

namespace fs = std::filesystem;

struct SourcePost {
  std::string source;  // where it came from, for messages
  std::string text;
};

// An mbox split into messages: a line "From " starts one (and is not part of it); mboxrd's
// ">From " quoting loses one '>'.
void SplitMbox(const std::string& path, const std::string& data, std::vector<SourcePost>& out) {
  std::istringstream in(data);
  std::string line;
  std::string* current = nullptr;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.rfind("From ", 0) == 0) {
      out.push_back(SourcePost{path + " message " + std::to_string(++n), ""});
      current = &out.back().text;
      continue;
    }
    if (current == nullptr) continue;
    const auto quoted = line.find_first_not_of('>');
    if (quoted != std::string::npos && quoted > 0 && line.compare(quoted, 5, "From ") == 0)
      line.erase(0, 1);
    *current += line;
    *current += '\n';
  }
}

Status AddFile(const fs::path& file, std::vector<SourcePost>& out) {
  BL_TRY_ASSIGN(std::string data, ReadInput(file.string()));
  if (data.rfind("From ", 0) == 0) {
    SplitMbox(file.string(), data, out);
  } else {
    out.push_back(SourcePost{file.string(), std::move(data)});
  }
  return Status::Ok();
}

Status AddDirectory(const fs::path& dir, std::vector<SourcePost>& out) {
  std::vector<fs::path> dirs;
  if (fs::is_directory(dir / "new") || fs::is_directory(dir / "cur")) {
    for (const char* sub : {"new", "cur"}) {
      if (fs::is_directory(dir / sub)) dirs.push_back(dir / sub);
    }
  } else {
    dirs.push_back(dir);
  }
  for (const auto& d : dirs) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(d, ec)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    if (ec) return MakeError("usage", "cannot list " + d.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) BL_TRY(AddFile(f, out));
  }
  return Status::Ok();
}

struct ParsedPost {
  mime::SmimeEnvelope smime;
  crypto::Envelope env;
};

Result<ParsedPost> ParsePost(const std::string& text) {
  BL_TRY_ASSIGN(mime::SmimeEnvelope smime, mime::ParseSmime(text));
  BL_TRY_ASSIGN(crypto::Envelope env, crypto::Envelope::Parse(smime.cms));
  return ParsedPost{std::move(smime), std::move(env)};
}

Result<std::string> Decrypt(const ParsedPost& post, const SecretBytes& cek) {
  auto plain = crypto::DecryptContent(post.env, cek);
  if (!plain.ok()) {
    if (plain.error().code == errc::kTampered || plain.error().code == errc::kUnwrapFailed)
      return MakeError("unreadable", "the message key does not decrypt this post");
    return plain.error();
  }
  return mime::UnprotectHeaders(AsChars(plain->view()), post.smime.outer_headers);
}

}  // namespace

Status OpenThresholdArchive(const ThresholdRead& t, const std::vector<std::string>& paths,
                            const std::string& out_dir) {
  if (out_dir.empty()) return MakeError("usage", "--archive needs --out-dir DIR");
  std::vector<SourcePost> sources;
  for (const auto& p : paths) {
    if (fs::is_directory(p)) {
      BL_TRY(AddDirectory(p, sources));
    } else {
      BL_TRY(AddFile(p, sources));
    }
  }
  if (sources.empty()) return MakeError("usage", "no posts in the --archive paths");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return MakeError("usage", "cannot create " + out_dir + ": " + ec.message());
  std::vector<Result<ParsedPost>> parsed;
  std::vector<ThresholdPost> posts;
  std::vector<std::size_t> post_of;  // index into `parsed` for each entry of `posts`
  parsed.reserve(sources.size());
  for (const auto& s : sources) parsed.push_back(ParsePost(s.text));
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    if (!parsed[i].ok()) continue;
    ThresholdPost p;
    p.env = &parsed[i]->env;
    for (std::size_t r = 0; r < p.env->recipients.size(); ++r) p.candidates.push_back(r);
    posts.push_back(std::move(p));
    post_of.push_back(i);
  }
  std::vector<std::string> notes;
  std::vector<Result<SecretBytes>> ceks;
  if (!posts.empty()) {
    BL_TRY_ASSIGN(ceks, ThresholdUnwrapMany(t, posts, notes));
  }
  for (const auto& note : notes) std::fprintf(stderr, "blindlist: open: %s\n", note.c_str());
  std::vector<std::string> errors(parsed.size());
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    if (!parsed[i].ok()) errors[i] = parsed[i].error().code + ": " + parsed[i].error().message;
  }
  int opened = 0;
  for (std::size_t j = 0; j < posts.size(); ++j) {
    const std::size_t i = post_of[j];
    Result<std::string> message =
        ceks[j].ok() ? Decrypt(*parsed[i], *ceks[j]) : Result<std::string>(ceks[j].error());
    if (!message.ok()) {
      errors[i] = message.error().code + ": " + message.error().message;
      continue;
    }
    char name[32];
    std::snprintf(name, sizeof name, "%04zu.eml", i + 1);
    Status written = WriteOutput((fs::path(out_dir) / name).string(), *message);
    if (!written.ok()) {
      errors[i] = written.error().code + ": " + written.error().message;
      continue;
    }
    ++opened;
  }
  const int failed = static_cast<int>(parsed.size()) - opened;
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    if (!errors[i].empty()) {
      std::fprintf(stderr, "blindlist: open: post %zu (%s) not opened: %s\n", i + 1,
                   sources[i].source.c_str(), errors[i].c_str());
    }
  }
  std::fprintf(stderr, "blindlist: open: %d post(s) opened into %s, %d not\n", opened,
               out_dir.c_str(), failed);
  if (failed > 0)
    return MakeError("not-opened", std::to_string(failed) + " of " + std::to_string(parsed.size()) +
                                       " posts not opened");
  return Status::Ok();
}

Result<std::vector<std::string>> ReadNodesFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return MakeError("usage", "cannot read the nodes file " + path);
  std::vector<std::string> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const auto last = line.find_last_not_of(" \t\r");
    std::string url = line.substr(first, last - first + 1);
    if (url.rfind("https://", 0) != 0 || url.find_first_of(" \t") != std::string::npos) {
      return MakeError("usage", path + ":" + std::to_string(number) +
                                    ": not an https:// URL (one node URL per line)");
    }
    out.push_back(std::move(url));
  }
  if (out.empty()) return MakeError("usage", "the nodes file " + path + " names no node");
  return out;
}

}  // namespace blindlist::cli
