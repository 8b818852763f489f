// tributary_mock_kafka: librdkafka's mock cluster in a long-lived process of its own, so that the
// agent can be kill -9'd and restarted against the same cluster (the data lives in this
// process's memory). Prints the bootstrap address on stdout, then reads one command a line on
// stdin and answers each with "ok" or "error <why>":
//   topic <name> <partitions>                   create a topic (replication factor 3)
//   down <broker> | up <broker>                 disconnect a broker / let it accept again
//   error <api_key> <error_code> [count]        push request errors, cluster-wide FIFO
//   broker_error <broker> <api_key> <error_code> <rtt_ms> [count]   per-broker, with delay
//   rtt <broker> <ms>                           add latency to a broker
//   leader <topic> <partition> <broker>         move a partition's leader
//   clear <api_key>                             drop pending injected errors
// Runs until stdin closes or SIGTERM/SIGINT.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kBrokers = 3;

volatile sig_atomic_t g_stop = 0;

void OnSignal(int /*signal*/) { g_stop = 1; }

std::string Execute(rd_kafka_mock_cluster_t* cluster, const std::string& line) {
  std::istringstream in(line);
  std::string command;
  in >> command;
  if (command == "topic") {
    std::string name;
    int partitions = 0;
    if (!(in >> name >> partitions) || partitions < 1) return "error usage: topic NAME PARTITIONS";
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster, name.c_str(), partitions, 3);
    return err ? std::string("error ") + rd_kafka_err2name(err) : "ok";
  }
  if (command == "down" || command == "up") {
    int broker = 0;
    if (!(in >> broker)) return "error usage: down|up BROKER";
    rd_kafka_resp_err_t err = command == "down" ? rd_kafka_mock_broker_set_down(cluster, broker)
                                                : rd_kafka_mock_broker_set_up(cluster, broker);
    return err ? std::string("error ") + rd_kafka_err2name(err) : "ok";
  }
  if (command == "error") {
    int api_key = 0;
    int code = 0;
    size_t count = 1;
    if (!(in >> api_key >> code)) return "error usage: error API_KEY CODE [COUNT]";
    in >> count;
    std::vector<rd_kafka_resp_err_t> errors(count, static_cast<rd_kafka_resp_err_t>(code));
    rd_kafka_mock_push_request_errors_array(cluster, static_cast<int16_t>(api_key), errors.size(),
                                            errors.data());
    return "ok";
  }
  if (command == "broker_error") {
    int broker = 0;
    int api_key = 0;
    int code = 0;
    int rtt_ms = 0;
    size_t count = 1;
    if (!(in >> broker >> api_key >> code >> rtt_ms)) {
      return "error usage: broker_error BROKER API_KEY CODE RTT_MS [COUNT]";
    }
    in >> count;
    for (size_t i = 0; i < count; ++i) {
      rd_kafka_resp_err_t err = rd_kafka_mock_broker_push_request_error_rtts(
          cluster, broker, static_cast<int16_t>(api_key), 1, static_cast<rd_kafka_resp_err_t>(code),
          rtt_ms);
      if (err) return std::string("error ") + rd_kafka_err2name(err);
    }
    return "ok";
  }
  if (command == "rtt") {
    int broker = 0;
    int ms = 0;
    if (!(in >> broker >> ms)) return "error usage: rtt BROKER MS";
    rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt(cluster, broker, ms);
    return err ? std::string("error ") + rd_kafka_err2name(err) : "ok";
  }
  if (command == "leader") {
    std::string topic;
    int partition = 0;
    int broker = 0;
    if (!(in >> topic >> partition >> broker)) return "error usage: leader TOPIC PARTITION BROKER";
    rd_kafka_resp_err_t err =
        rd_kafka_mock_partition_set_leader(cluster, topic.c_str(), partition, broker);
    return err ? std::string("error ") + rd_kafka_err2name(err) : "ok";
  }
  if (command == "clear") {
    int api_key = 0;
    if (!(in >> api_key)) return "error usage: clear API_KEY";
    rd_kafka_mock_clear_request_errors(cluster, static_cast<int16_t>(api_key));
    return "ok";
  }
  return "error unknown command";
}

}  // namespace

int main() {
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The handle only hosts the cluster; it never connects anywhere.
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    std::cerr << "mock_kafka: " << errstr << "\n";
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, kBrokers);
  if (cluster == nullptr) {
    std::cerr << "mock_kafka: cannot create the mock cluster\n";
    rd_kafka_destroy(rk);
    return 1;
  }
  std::cout << rd_kafka_mock_cluster_bootstraps(cluster) << std::endl;

  std::string pending;
  while (!g_stop) {
    struct pollfd fd {
      STDIN_FILENO, POLLIN, 0
    };
    int ready = poll(&fd, 1, 200);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    char buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // stdin closed: the harness is gone
    pending.append(buf, static_cast<size_t>(n));
    size_t end = 0;
    while ((end = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, end);
      pending.erase(0, end + 1);
      if (line.empty()) continue;
      std::cout << Execute(cluster, line) << std::endl;
    }
  }
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  return 0;
}
