#pragma once

#include <memory>
#include <string>
#include <thread>

#include "agent/config.h"
#include "agent/core/status.h"
#include "agent/metrics.h"

namespace httplib {
class Server;
}

namespace tributary {

// The agent's HTTP endpoint on `http.listen`: /metrics (Prometheus text), /healthz (the process
// answers), /readyz (every source streaming, every sink healthy; else 503 and why) and /status
// (JSON: each source's state, checkpoint and lag). Serves from its own thread until destroyed.
class HttpServer {
 public:
  // Fails (retriable) when the address cannot be bound, e.g. while an old instance exits.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpConfig& config, Metrics& metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

 private:
  HttpServer(std::unique_ptr<httplib::Server> server, Metrics& metrics);

  std::unique_ptr<httplib::Server> server_;
  Metrics& metrics_;
  std::thread thread_;
};

// The /status document for `snapshots`.
std::string StatusJson(const std::vector<SourceSnapshot>& snapshots);

}  // namespace tributary
