#include "api/groupd_client.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "api/json_fields.h"
#include "blindlist/error_codes.h"
#include "blindlist/hex.h"

namespace blindlist::api {

using json = nlohmann::json;

ApiClient::ApiClient(const ApiCredentials& creds) : server_(creds.server), token_(creds.token) {
  while (!server_.empty() && server_.back() == '/') server_.pop_back();
  net::HttpsClientConfig config;
  config.ca_file = creds.ca_file;
  config.client_cert_file = creds.client_cert_file;
  config.client_key_file = creds.client_key_file;
  http_ = std::make_unique<net::HttpsClient>(config);
}

ApiClient::~ApiClient() = default;

std::string ApiClient::Segment(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '@' || c == '+') {
      out.push_back(static_cast<char>(c));
    } else {
      hex::AppendPercentEscape(out, c);
    }
  }
  return out;
}

namespace {
Error RefusalFrom(const net::ClientResponse& r) {
  json body = json::parse(r.body, nullptr, false);
  std::string code = "http-" + std::to_string(r.status);
  std::string message = r.body.substr(0, 200);
  if (auto word = StringField(body, "error")) code = std::move(*word);
  if (auto text = StringField(body, "message")) message = std::move(*text);
  return MakeError(code,
                   "server refused (" + std::to_string(r.status) + " " + code + "): " + message);
}
}  // namespace

Result<json> ApiClient::Call(const std::string& method, const std::string& path, const json& body) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token_.empty()) headers.emplace_back("authorization", "Bearer " + token_);
  std::string payload;
  if (!body.is_null()) {
    headers.emplace_back("content-type", "application/json");
    // Command-line values go into the body as given; text that is not UTF-8 would make
    // dump() throw. The two non-throwing forms differ only when some string is not UTF-8.
    payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
    if (payload != body.dump(-1, ' ', false, json::error_handler_t::ignore))
      return MakeError(
          std::string(errc::kMalformedRequest),
          "a value for the request (a group name, an address, ...) is not valid UTF-8");
  }
  last_status_ = 0;
  BL_TRY_ASSIGN(net::ClientResponse r, http_->Request(method, server_ + path, payload, headers));
  last_status_ = r.status;
  if (r.status < 200 || r.status >= 300) return RefusalFrom(r);
  json reply = json::parse(r.body, nullptr, false);
  if (reply.is_discarded())
    return MakeError(std::string(errc::kBadReply), "the server's reply is not JSON");
  return reply;
}

Result<std::string> ApiClient::GetText(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token_.empty()) headers.emplace_back("authorization", "Bearer " + token_);
  last_status_ = 0;
  last_headers_.clear();
  BL_TRY_ASSIGN(net::ClientResponse r, http_->Request("GET", server_ + path, {}, headers));
  last_status_ = r.status;
  last_headers_ = r.headers;
  if (r.status < 200 || r.status >= 300) return RefusalFrom(r);
  return r.body;
}

std::string ApiClient::last_header(std::string_view name) const {
  for (const auto& [key, value] : last_headers_) {
    if (key == name) return value;
  }
  return "";
}

bool ApiClient::IsTransient(const Error& error, int status) {
  if (status == 0) {
    // No answer: the network, the server's process or its TLS set-up; not a malformed URL.
    return error.code == errc::kConnectFailed || error.code == errc::kTimeout ||
           error.code == errc::kTlsFailed;
  }
  if (status >= 500 || status == 429) return true;
  return status >= 200 && status < 300 && error.code == errc::kBadReply;
}

}  // namespace blindlist::api
