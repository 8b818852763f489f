#define BOOST_TEST_MODULE kafka_sink_options_test
#include <boost/test/unit_test.hpp>

#include "agent/components.h"
#include "agent/config.h"
#include "sinks/kafka/kafka_sink.h"

namespace tributary {
namespace {

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

BOOST_AUTO_TEST_CASE(parses_kafka_sink_keys) {
  auto config = ParseConfig(R"(state_dir: /tmp/s
sources:
  - { name: a, type: postgres, dsn: "host=x", tables: [public.t], snapshot: never, sinks: [k] }
sinks:
  - name: k
    type: kafka
    brokers: "127.0.0.1:9092"
    topic: "{source}.{table}"
    tombstones: false
    dlq_topic: a.dlq
    librdkafka: { compression.type: lz4, linger.ms: 20 }
)",
                            "test.yaml");
  BOOST_REQUIRE_MESSAGE(config.ok(), config.status().message());
  const SinkConfig& sink = config->sinks.at(0);
  BOOST_TEST(sink.type == "kafka");
  BOOST_TEST(sink.brokers == "127.0.0.1:9092");
  BOOST_TEST(sink.topic == "{source}.{table}");
  BOOST_TEST(!sink.tombstones);
  BOOST_TEST(!sink.exactly_once);
  BOOST_TEST(sink.dlq_topic == "a.dlq");
  BOOST_REQUIRE(sink.librdkafka.size() == 2u);
  BOOST_TEST(sink.librdkafka[0].first == "compression.type");
  BOOST_TEST(sink.librdkafka[1].second == "20");
  BOOST_TEST(UnsupportedFeatures(*config).empty(), Joined(UnsupportedFeatures(*config)));
}

BOOST_AUTO_TEST_CASE(reports_every_kafka_problem) {
  auto config = ParseConfig(R"(state_dir: /tmp/s
sinks:
  - name: k
    type: kafka
    tombstones: maybe
    dlq_topic: "bad topic"
    path: /nope
)",
                            "test.yaml");
  BOOST_REQUIRE(!config.ok());
  const std::string& message = config.status().message();
  BOOST_TEST(message.find("sinks[0].brokers: required key is missing") != std::string::npos,
             message);
  BOOST_TEST(message.find("sinks[0].tombstones: expected true or false") != std::string::npos,
             message);
  BOOST_TEST(message.find("sinks[0].dlq_topic:") != std::string::npos, message);
  BOOST_TEST(message.find("sinks[0].path: unknown key") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(librdkafka_conflicts_and_rejections_are_config_problems) {
  KafkaSinkOptions options;
  options.name = "k";
  options.brokers = "127.0.0.1:9092";
  options.librdkafka = {
      {"acks", "1"},       {"compression.type", "lz4"},  {"no.such.property", "1"},
      {"linger.ms", "-5"}, {"sasl.password", "hunter2"}, {"ssl.key.password", "hunter2"}};
  std::string problems = Joined(CheckKafkaSinkOptions(options, "sinks[0]"));
  BOOST_TEST(problems.find("sinks[0].librdkafka.\"acks\": conflicts") != std::string::npos,
             problems);
  BOOST_TEST(problems.find("no.such.property") != std::string::npos, problems);
  BOOST_TEST(problems.find("linger.ms") != std::string::npos, problems);
  BOOST_TEST(problems.find("compression.type") == std::string::npos, problems);
  // Secrets never appear, whatever librdkafka says.
  BOOST_TEST(problems.find("hunter2") == std::string::npos, problems);
}

BOOST_AUTO_TEST_CASE(exactly_once_is_accepted_and_its_topic_checked) {
  auto config = ParseConfig(R"(state_dir: /tmp/s
sources:
  - { name: a, type: postgres, dsn: "host=x", tables: [public.t], snapshot: never, sinks: [k] }
sinks:
  - { name: k, type: kafka, brokers: "b:1", exactly_once: true, offsets_topic: cdc.offsets }
)",
                            "test.yaml");
  BOOST_REQUIRE_MESSAGE(config.ok(), config.status().message());
  BOOST_TEST(config->sinks[0].offsets_topic == "cdc.offsets");
  BOOST_TEST(Joined(UnsupportedFeatures(*config)).empty());
  // transactional.id is the sink's own in this mode.
  KafkaSinkOptions options = KafkaOptionsFor(config->sinks[0], "a");
  options.librdkafka = {{"transactional.id", "mine"}};
  BOOST_TEST(Joined(CheckKafkaSinkOptions(options, "sinks[0]")).find("transactional.id") !=
             std::string::npos);

  auto bad = ParseConfig(R"(state_dir: /tmp/s
sources:
  - { name: a, type: postgres, dsn: "host=x", tables: [public.t], snapshot: never, sinks: [k] }
sinks:
  - { name: k, type: kafka, brokers: "b:1", exactly_once: true, offsets_topic: "no/slash" }
)",
                         "test.yaml");
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.status().message().find("offsets_topic") != std::string::npos,
             bad.status().message());
}

}  // namespace
}  // namespace tributary
