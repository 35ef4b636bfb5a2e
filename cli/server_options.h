// The options every command that talks to groupd or certd shares: the server
// URL and how to authenticate (bearer token, or client certificate and key),
// and the CA that verifies the server.
#pragma once

#include <string>
#include <vector>

#include "api/groupd_client.h"

namespace CLI {
class App;
}

namespace blindlist::cli {

// Adds --server, --token (or env BLINDLIST_TOKEN), --client-cert, --client-key, --ca.
// With `servers`, --server may be repeated (threshold reads: one per node) and fills it instead.
void AddServerOptions(CLI::App* cmd, api::ApiCredentials& creds, bool server_required = true,
                      std::vector<std::string>* servers = nullptr);
// Fills the token from the environment when not given; checks cert/key come together.
Status FinishServerOptions(api::ApiCredentials& creds);

}  // namespace blindlist::cli
