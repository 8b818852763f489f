#define BOOST_TEST_MODULE package_deb_test
#include <fmt/format.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/agent_process.h"
#include "tests/support/pg_server.h"
#include "tests/support/temp_dir.h"

namespace tributary::testing {
namespace {

namespace fs = std::filesystem;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Builds the .deb with cpack from the build tree the tests belong to, then inspects it with
// dpkg-deb the way an installer would see it.
BOOST_AUTO_TEST_CASE(deb_holds_binary_unit_conffile_docs_and_maintainer_scripts) {
  TempDir dir;
  const fs::path build_dir = fs::path(TRIBUTARY_BINARY).parent_path();
  RunCommand(fmt::format("cpack -G DEB -B {} --config {}", dir.path().string(),
                         (build_dir / "CPackConfig.cmake").string()));
  const fs::path deb = dir.path() / "tributary_" TRIBUTARY_VERSION "_amd64.deb";
  BOOST_REQUIRE(fs::exists(deb));

  const std::string control = RunCommand("dpkg-deb -f " + deb.string());
  BOOST_TEST(Contains(control, "Package: tributary\n"));
  BOOST_TEST(Contains(control, "Version: " TRIBUTARY_VERSION "\n"));
  BOOST_TEST(Contains(control, "Section: database\n"));
  BOOST_TEST(Contains(control, "Maintainer: "));
  // dpkg-shlibdeps filled Depends from the binary's libraries; adduser is for postinst.
  for (const char* dependency : {"adduser", "libpq5", "libsystemd0", "libprometheus-cpp-core1.0",
                                 "libcpp-httplib0.11", "libyaml-cpp0.7"}) {
    BOOST_TEST(Contains(control, dependency), "Depends lacks " << dependency);
  }

  const std::string contents = RunCommand("dpkg-deb -c " + deb.string());
  for (const char* path :
       {"./usr/bin/tributary", "./lib/systemd/system/tributary.service",
        "./etc/tributary/tributary.yaml", "./etc/tributary/secrets/",
        "./usr/share/doc/tributary/operations.md", "./usr/share/doc/tributary/config.md"}) {
    BOOST_TEST(Contains(contents, path), "package lacks " << path);
  }
  BOOST_TEST(Contains(contents, "drwx------ root/root         0"));  // secrets: root only

  const fs::path control_dir = dir.path() / "control";
  RunCommand(fmt::format("dpkg-deb -e {} {}", deb.string(), control_dir.string()));
  BOOST_TEST(ReadFile(control_dir / "conffiles") == "/etc/tributary/tributary.yaml\n");
  const std::string postinst = ReadFile(control_dir / "postinst");
  BOOST_TEST(Contains(postinst, "adduser --system --group"));
  BOOST_TEST(Contains(postinst, "tributary"));
  for (const char* script : {"postinst", "prerm", "postrm"}) {
    const auto perms = fs::status(control_dir / script).permissions();
    BOOST_TEST(((perms & fs::perms::owner_exec) != fs::perms::none), script);
    RunCommand("sh -n " + (control_dir / script).string());  // throws on a syntax error
  }
  BOOST_TEST(Contains(ReadFile(control_dir / "postrm"), "purge"));

  // The unit as packaged passes systemd-analyze verify; only the binary path is pointed at
  // the extracted one, since /usr/bin/tributary is not installed on a build machine.
  const fs::path root = dir.path() / "root";
  RunCommand(fmt::format("dpkg-deb -x {} {}", deb.string(), root.string()));
  std::string unit = ReadFile(root / "lib/systemd/system/tributary.service");
  for (const char* key : {"Type=notify", "ExecStartPre=/usr/bin/tributary validate",
                          "WatchdogSec=", "Restart=on-failure", "RestartPreventExitStatus=65 78",
                          "StateDirectory=tributary", "ConfigurationDirectory=tributary",
                          "LoadCredential=", "ProtectSystem=strict", "User=tributary"}) {
    BOOST_TEST(Contains(unit, key), "unit lacks " << key);
  }
  const std::string extracted = (root / "usr/bin/tributary").string();
  for (size_t at = 0; (at = unit.find("/usr/bin/tributary", at)) != std::string::npos;
       at += extracted.size()) {
    unit.replace(at, 18, extracted);
  }
  const fs::path unit_dir = dir.path() / "unit";
  fs::create_directories(unit_dir);
  std::ofstream(unit_dir / "tributary.service") << unit;
  BOOST_TEST(
      RunCommand("systemd-analyze verify " + (unit_dir / "tributary.service").string()).empty());
  const std::string security = RunCommand("systemd-analyze security --offline=true " +
                                          (unit_dir / "tributary.service").string());
  BOOST_TEST_MESSAGE(
      "systemd-analyze security: " << security.substr(security.find("Overall exposure level")));
  BOOST_TEST(Contains(security, "Overall exposure level for tributary.service: 1."));

  // The packaged binary runs.
  BOOST_TEST(RunCommand((root / "usr/bin/tributary").string() + " version") ==
             "tributary " TRIBUTARY_VERSION "\n");
}

}  // namespace
}  // namespace tributary::testing
