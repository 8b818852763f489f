// tributary_bare_producer: the baseline of tests/bench/pg_to_kafka.sh. A plain librdkafka
// producer that sends records read from a file, with the producer settings the agent's Kafka
// sink uses (idempotence, acks=all, murmur2_random, librdkafka's linger and batch defaults).
//
//   tributary_bare_producer BOOTSTRAP TOPIC FILE
//
// FILE holds one record a line as `kcat -C -J` prints it (key, payload, headers), typically the
// agent's own records read back from a Kafka topic, so both contenders send the same bytes.
// Everything is loaded into memory first; only producing and waiting for every delivery report
// is timed. Prints one JSON object on stdout: records, bytes, seconds, cpu_seconds (user+sys of
// the timed part), rss_loaded_kb (after loading) and peak_rss_kb. Exits 1 on any failure,
// including a record whose delivery failed.
#include <librdkafka/rdkafka.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr int kQueueFullPollMs = 100;
constexpr int kFlushStepMs = 100;
constexpr int kMetadataTimeoutMs = 10000;

// Where a record's parts sit in the one buffer that holds all of them; a header is a name and a
// value span, adjacent in `headers`.
struct Span {
  size_t offset = 0;
  size_t size = 0;
};

struct Record {
  Span key;
  bool has_key = false;
  Span value;
  bool has_value = false;
  size_t first_header = 0;  // index into headers, names and values alternating
  size_t header_count = 0;
};

struct Records {
  std::string bytes;
  std::vector<Record> records;
  std::vector<Span> headers;

  Span Add(std::string_view text) {
    Span span{bytes.size(), text.size()};
    bytes.append(text);
    return span;
  }
  std::string_view Text(Span span) const { return {bytes.data() + span.offset, span.size}; }
};

struct Deliveries {
  size_t delivered = 0;
  size_t failed = 0;
  std::string first_error;
};

bool Load(const char* path, Records& out) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "bare_producer: cannot open " << path << "\n";
    return false;
  }
  // Reserved, not grown by doubling, so that the peak RSS is not twice the input's size.
  in.seekg(0, std::ios::end);
  out.bytes.reserve(static_cast<size_t>(in.tellg()));
  in.seekg(0, std::ios::beg);
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line.front() != '{') continue;  // kcat's status lines
    nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object() || !json.contains("payload")) {
      std::cerr << "bare_producer: " << path << ":" << number << ": not a kcat -J record\n";
      return false;
    }
    Record record;
    if (json.contains("key") && json["key"].is_string()) {
      record.key = out.Add(json["key"].get_ref<const std::string&>());
      record.has_key = true;
    }
    if (json["payload"].is_string()) {
      record.value = out.Add(json["payload"].get_ref<const std::string&>());
      record.has_value = true;
    }
    record.first_header = out.headers.size();
    if (json.contains("headers") && json["headers"].is_array()) {
      const auto& headers = json["headers"];
      for (size_t i = 0; i + 1 < headers.size(); i += 2) {
        out.headers.push_back(out.Add(headers[i].get<std::string>()));
        out.headers.push_back(
            out.Add(headers[i + 1].is_null() ? std::string() : headers[i + 1].get<std::string>()));
        ++record.header_count;
      }
    }
    out.records.push_back(record);
  }
  return true;
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

long PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

long CurrentRssKb() {
  long pages = 0;
  long resident = 0;
  if (std::FILE* statm = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(statm, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(statm);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message, void* opaque) {
  auto* deliveries = static_cast<Deliveries*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++deliveries->delivered;
    return;
  }
  if (deliveries->failed++ == 0) deliveries->first_error = rd_kafka_err2str(message->err);
}

int Run(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: tributary_bare_producer BOOTSTRAP TOPIC FILE\n";
    return 2;
  }
  Records input;
  if (!Load(argv[3], input)) return 1;
  const long rss_loaded_kb = CurrentRssKb();

  Deliveries deliveries;
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The agent's own settings (sinks/kafka/kafka_sink.cpp, BaseSettings); nothing else changed.
  const std::vector<std::pair<const char*, const char*>> settings = {
      {"bootstrap.servers", argv[1]},    {"client.id", "tributary-bare-producer"},
      {"enable.idempotence", "true"},    {"acks", "all"},
      {"partitioner", "murmur2_random"}, {"log_level", "3"},
  };
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      std::cerr << "bare_producer: " << key << ": " << errstr << "\n";
      return 1;
    }
  }
  rd_kafka_conf_set_opaque(conf, &deliveries);
  rd_kafka_conf_set_dr_msg_cb(conf, &OnDelivery);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (producer == nullptr) {
    std::cerr << "bare_producer: " << errstr << "\n";
    return 1;
  }
  rd_kafka_topic_t* topic = rd_kafka_topic_new(producer, argv[2], nullptr);
  // The baseline at its best: connected and with the topic's metadata before the clock starts.
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t error = rd_kafka_metadata(producer, 0, topic, &metadata, kMetadataTimeoutMs);
  if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::cerr << "bare_producer: metadata: " << rd_kafka_err2str(error) << "\n";
    return 1;
  }
  rd_kafka_metadata_destroy(metadata);

  const double cpu_start = CpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  for (const Record& record : input.records) {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(record.header_count);
    for (size_t i = 0; i < record.header_count; ++i) {
      const std::string_view name = input.Text(input.headers[record.first_header + 2 * i]);
      const std::string_view value = input.Text(input.headers[record.first_header + 2 * i + 1]);
      rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    }
    // As the agent: librdkafka copies key and value (RD_KAFKA_MSG_F_COPY).
    void* key = record.has_key ? input.bytes.data() + record.key.offset : nullptr;
    void* value = record.has_value ? input.bytes.data() + record.value.offset : nullptr;
    while (true) {
      error = rd_kafka_producev(producer, RD_KAFKA_V_RKT(topic),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(key, record.has_key ? record.key.size : 0),
                                RD_KAFKA_V_VALUE(value, record.has_value ? record.value.size : 0),
                                RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
      if (error != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
      rd_kafka_poll(producer, kQueueFullPollMs);
    }
    if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_headers_destroy(headers);
      std::cerr << "bare_producer: produce: " << rd_kafka_err2str(error) << "\n";
      return 1;
    }
    rd_kafka_poll(producer, 0);
  }
  while (rd_kafka_outq_len(producer) > 0) rd_kafka_flush(producer, kFlushStepMs);
  const auto end = std::chrono::steady_clock::now();
  const double cpu_seconds = CpuSeconds() - cpu_start;

  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(producer);
  if (deliveries.failed > 0 || deliveries.delivered != input.records.size()) {
    std::cerr << "bare_producer: " << deliveries.delivered << " of " << input.records.size()
              << " records delivered, " << deliveries.failed
              << " failed (first: " << deliveries.first_error << ")\n";
    return 1;
  }
  nlohmann::json result = {
      {"records", input.records.size()},
      {"bytes", input.bytes.size()},
      {"seconds", std::chrono::duration<double>(end - start).count()},
      {"cpu_seconds", cpu_seconds},
      {"rss_loaded_kb", rss_loaded_kb},
      {"peak_rss_kb", PeakRssKb()},
  };
  std::cout << result.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    // A bug or an input kcat did not write (e.g. a header value that is not a string).
    std::cerr << "bare_producer: " << e.what() << "\n";
    return 1;
  }
}
