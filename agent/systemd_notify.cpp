#include "agent/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstring>

#include "agent/core/clock.h"
#include "agent/core/logging.h"

namespace tributary {

void NotifySystemd(const std::string& state) {
  const int result = sd_notify(0, state.c_str());
  if (result < 0) spdlog::warn("agent: sd_notify failed error={}", strerror(-result));
}

Watchdog::Watchdog(size_t slots)
    : slots_(slots),
      beats_(std::make_unique<std::atomic<int64_t>[]>(slots)),
      retired_(std::make_unique<std::atomic<bool>[]>(slots)) {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) interval_ns_ = static_cast<int64_t>(usec) * 1000;
  const int64_t now = SteadyNanosNow();
  last_ping_ns_.store(now);
  for (size_t i = 0; i < slots_; ++i) {
    beats_[i].store(0);
    retired_[i].store(false);
  }
}

void Watchdog::Beat(size_t slot) {
  if (interval_ns_ == 0) return;
  const int64_t now = SteadyNanosNow();
  beats_[slot].store(now, std::memory_order_relaxed);
  // Half the interval, as sd_watchdog_enabled(3) advises.
  if (now - last_ping_ns_.load(std::memory_order_relaxed) < interval_ns_ / 2) return;
  std::lock_guard lock(mutex_);
  const int64_t last_ping = last_ping_ns_.load();
  if (now - last_ping < interval_ns_ / 2) return;
  for (size_t i = 0; i < slots_; ++i) {
    if (!retired_[i].load() && beats_[i].load(std::memory_order_relaxed) <= last_ping) return;
  }
  sd_notify(0, "WATCHDOG=1");
  last_ping_ns_.store(now);
}

void Watchdog::Retire(size_t slot) { retired_[slot].store(true); }

}  // namespace tributary
