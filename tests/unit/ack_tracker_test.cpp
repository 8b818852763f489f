#define BOOST_TEST_MODULE ack_tracker_test
#include "agent/ack_tracker.h"

#include <boost/test/unit_test.hpp>
#include <optional>
#include <string>

namespace tributary {
namespace {

// The advance as text, so that failures print it.
std::string Take(AckTracker& tracker) { return tracker.TakeAdvance().value_or("<none>"); }

BOOST_AUTO_TEST_CASE(in_order_acks_advance_once_per_move) {
  AckTracker tracker;
  tracker.Register(1, "A", 1);
  tracker.Register(2, "B", 1);
  BOOST_TEST(tracker.InFlight() == 2u);
  BOOST_TEST(Take(tracker) == "<none>");

  tracker.Ack(1);
  BOOST_TEST(Take(tracker) == "A");
  BOOST_TEST(Take(tracker) == "<none>");
  BOOST_TEST(tracker.InFlight() == 1u);

  tracker.Ack(2);
  BOOST_TEST(Take(tracker) == "B");
  BOOST_TEST(tracker.InFlight() == 0u);
}

BOOST_AUTO_TEST_CASE(out_of_order_acks_wait_for_the_prefix) {
  AckTracker tracker;
  tracker.Register(1, "A", 1);
  tracker.Register(2, "B", 1);
  tracker.Register(3, "C", 1);
  tracker.Ack(3);
  tracker.Ack(2);
  BOOST_TEST(Take(tracker) == "<none>");
  BOOST_TEST(tracker.InFlight() == 3u);

  tracker.Ack(1);
  // The whole prefix is acked: only its latest position matters.
  BOOST_TEST(Take(tracker) == "C");
  BOOST_TEST(tracker.InFlight() == 0u);
}

BOOST_AUTO_TEST_CASE(every_sink_must_ack) {
  AckTracker tracker;
  tracker.Register(1, "A", 2);
  tracker.Register(2, "B", 2);
  tracker.Ack(1);
  tracker.Ack(2);
  BOOST_TEST(Take(tracker) == "<none>");

  tracker.Ack(2);
  BOOST_TEST(Take(tracker) == "<none>");
  tracker.Ack(1);
  BOOST_TEST(Take(tracker) == "B");
}

BOOST_AUTO_TEST_CASE(batches_without_commit_positions_advance_the_prefix_only) {
  AckTracker tracker;
  tracker.Register(1, std::nullopt, 1);
  tracker.Register(2, std::nullopt, 1);
  tracker.Ack(1);
  BOOST_TEST(Take(tracker) == "<none>");
  BOOST_TEST(tracker.InFlight() == 1u);

  tracker.Register(3, "C", 1);
  tracker.Register(4, std::nullopt, 1);
  tracker.Ack(4);
  tracker.Ack(3);
  tracker.Ack(2);
  // Batch 4 ended mid-transaction: the checkpoint stays at C's commit.
  BOOST_TEST(Take(tracker) == "C");
  BOOST_TEST(tracker.InFlight() == 0u);
}

BOOST_AUTO_TEST_CASE(surplus_and_unknown_acks_are_ignored) {
  AckTracker tracker;
  tracker.Register(1, "A", 1);
  tracker.Register(2, "B", 1);
  tracker.Register(3, "C", 1);
  tracker.Ack(2);
  tracker.Ack(2);  // beyond the sink count: must not count for another batch
  tracker.Ack(99);
  BOOST_TEST(Take(tracker) == "<none>");
  BOOST_TEST(tracker.InFlight() == 3u);

  tracker.Ack(1);
  BOOST_TEST(Take(tracker) == "B");
  tracker.Ack(1);  // already retired
  tracker.Ack(2);
  BOOST_TEST(Take(tracker) == "<none>");
  BOOST_TEST(tracker.InFlight() == 1u);

  tracker.Ack(3);
  BOOST_TEST(Take(tracker) == "C");
}

BOOST_AUTO_TEST_CASE(a_batch_without_sinks_is_acked_at_once) {
  AckTracker tracker;
  tracker.Register(1, "A", 0);
  BOOST_TEST(tracker.InFlight() == 0u);
  BOOST_TEST(Take(tracker) == "A");
}

}  // namespace
}  // namespace tributary
