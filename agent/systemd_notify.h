#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace tributary {

// sd_notify(3) messages to the service manager: READY=1, STATUS=…, STOPPING=1, RELOADING=1.
// Does nothing when $NOTIFY_SOCKET is unset (not started by systemd as Type=notify).
void NotifySystemd(const std::string& state);

// Pings WATCHDOG=1 from the pipelines' own progress, not from a timer, so that a stalled
// pipeline gets the service restarted: a ping goes out only once every registered pipeline
// has beaten since the previous ping. Inert unless $WATCHDOG_USEC is set for this process.
class Watchdog {
 public:
  // `slots`: how many pipelines beat.
  explicit Watchdog(size_t slots);

  bool enabled() const { return interval_ns_ > 0; }
  std::chrono::microseconds interval() const {
    return std::chrono::microseconds(interval_ns_ / 1000);
  }

  // Called from pipeline `slot`'s loop on every turn; cheap unless a ping is due.
  void Beat(size_t slot);
  // A pipeline that has ended (stopped, or failed and isolated) no longer holds pings back.
  void Retire(size_t slot);

 private:
  int64_t interval_ns_ = 0;
  size_t slots_;
  std::unique_ptr<std::atomic<int64_t>[]> beats_;  // steady ns of each slot's last beat
  std::unique_ptr<std::atomic<bool>[]> retired_;
  std::atomic<int64_t> last_ping_ns_{0};
  std::mutex mutex_;
};

}  // namespace tributary
