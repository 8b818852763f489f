#include "agent/http_server.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "agent/core/logging.h"

namespace tributary {

std::string StatusJson(const std::vector<SourceSnapshot>& snapshots) {
  nlohmann::json sources = nlohmann::json::array();
  for (const SourceSnapshot& s : snapshots) {
    nlohmann::json source = {
        {"name", s.name},
        {"type", s.type},
        {"state", PipelineStateName(s.state)},
        {"checkpoint", s.checkpoint ? nlohmann::json(*s.checkpoint) : nlohmann::json()},
        {"lag_seconds", s.lag_seconds ? nlohmann::json(*s.lag_seconds) : nlohmann::json()},
        {"checkpoint_age_seconds",
         s.checkpoint_age_seconds ? nlohmann::json(*s.checkpoint_age_seconds) : nlohmann::json()},
        {"slot_lag_bytes", s.slot_lag_bytes ? nlohmann::json(*s.slot_lag_bytes) : nlohmann::json()},
        {"events", s.events},
        {"restarts", s.restarts},
        {"unhealthy_sinks", s.unhealthy_sinks},
    };
    if (!s.last_error.empty()) source["last_error"] = s.last_error;
    sources.push_back(std::move(source));
  }
  return nlohmann::json{{"version", TRIBUTARY_VERSION}, {"sources", std::move(sources)}}.dump(2) +
         "\n";
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpConfig& config, Metrics& metrics) {
  auto server = std::make_unique<httplib::Server>();
  if (!server->bind_to_port(config.host, config.port)) {
    return Status::Retriable("http: cannot listen on " + config.host + ":" +
                             std::to_string(config.port));
  }
  spdlog::info("http: Listening address={}:{}", config.host, config.port);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(server), metrics));
}

HttpServer::HttpServer(std::unique_ptr<httplib::Server> server, Metrics& metrics)
    : server_(std::move(server)), metrics_(metrics) {
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(metrics_.Serialize(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    std::string why;
    if (metrics_.Ready(why)) {
      response.set_content("ready\n", "text/plain");
    } else {
      response.status = 503;
      response.set_content(why, "text/plain");
    }
  });
  server_->Get("/status", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(StatusJson(metrics_.Snapshot()), "application/json");
  });
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

HttpServer::~HttpServer() {
  server_->stop();
  thread_.join();
}

}  // namespace tributary
