// kiln's TCP store (engine/src/dist/tcp_store*.cpp) against clients that behave
// and clients that do not: it binds only the address it is given, admits only
// connections that prove the job's secret for a fresh nonce, drops a client that
// stalls mid-message or breaks a cap, logs each drop, and keeps serving everyone
// else meanwhile.
#include <kiln/dist/store.h>
#include <kiln/error.h>
#include <kiln/log.h>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>

#include <fstream>
#include <mutex>
#include <sstream>

#include "dist/free_port.h"
#include "dist/raw_store_client.h"

namespace kiln::dist {
namespace {

using namespace std::chrono_literals;
using test::free_port;
using test::RawStoreClient;
using ::testing::HasSubstr;

const std::string kSecret = "tcp-store-test-secret-0123456789";

// The warning lines logged while it lives.
class WarningLog {
 public:
  WarningLog() {
    handle_ = log::add_listener([this](log::Level level, std::string_view line) {
      if (level != log::Level::Warn) return;
      std::lock_guard lock(mutex_);
      lines_ += std::string(line) + "\n";
    });
  }
  ~WarningLog() { log::remove_listener(handle_); }
  std::string text() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  // Waits up to `patience` for `part` to appear.
  bool shows(const std::string& part, std::chrono::milliseconds patience = 2s) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (text().find(part) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

 private:
  int handle_ = -1;
  std::mutex mutex_;
  std::string lines_;
};

std::unique_ptr<Store> serve(int port) {
  return open_tcp_store("127.0.0.1", port, true, 5s, kSecret);
}

// Listening sockets on `port` in /proc/net/tcp and tcp6, as "ADDRESS" in the
// kernel's hex ("0100007F" is 127.0.0.1, 32 zeros is [::]).
std::vector<std::string> listening_addresses(int port) {
  std::vector<std::string> found;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      const std::size_t colon = local.find(':');
      if (state == "0A" && std::stoi(local.substr(colon + 1), nullptr, 16) == port)
        found.push_back(local.substr(0, colon));
    }
  }
  return found;
}

// This machine's first IPv4 address that is not loopback, if any.
std::string non_loopback_address() {
  ifaddrs* all = nullptr;
  std::string found;
  if (::getifaddrs(&all) != 0) return found;
  for (const ifaddrs* a = all; a != nullptr && found.empty(); a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr, text,
                sizeof text);
    if (!std::string_view(text).starts_with("127.")) found = text;
  }
  ::freeifaddrs(all);
  return found;
}

TEST(TcpStore, BindsOnlyTheAddressItIsGiven) {
  const int port = free_port();
  auto store = serve(port);
  EXPECT_THAT(listening_addresses(port), ::testing::ElementsAre("0100007F"));
  // Every 127/8 address reaches the loopback interface: only 127.0.0.1 may answer.
  RawStoreClient other_loopback(port, "127.0.0.2");
  EXPECT_FALSE(other_loopback.connected());
  EXPECT_EQ(other_loopback.error(), ECONNREFUSED);
  if (const std::string address = non_loopback_address(); !address.empty()) {
    RawStoreClient outside(port, address.c_str());
    EXPECT_FALSE(outside.connected()) << address;
  }
  RawStoreClient loopback(port);
  EXPECT_TRUE(loopback.connected());
}

TEST(TcpStore, AnAddressOfAnotherMachineCannotBeServed) {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no machine has it.
  const std::string error = [&] {
    try {
      open_tcp_store("192.0.2.1", free_port(), true, 1s, kSecret);
    } catch (const StageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  }();
  EXPECT_THAT(error, HasSubstr("rank 0 cannot serve the store"));
  EXPECT_THAT(error, HasSubstr("192.0.2.1"));
}

TEST(TcpStore, TheRightSecretIsAdmittedAndServed) {
  const int port = free_port();
  auto store = serve(port);
  store->set("hb.0", "1 0 run");
  RawStoreClient client(port);
  ASSERT_TRUE(client.prove(kSecret));
  client.send("G" + test::store_field("hb.0"));
  EXPECT_EQ(client.read(1 + 4 + 7), "y" + test::store_field("1 0 run"));
  client.send("S" + test::store_field("raw") + test::store_field("value"));
  EXPECT_EQ(client.read(1), "k");
  EXPECT_EQ(store->try_get("raw"), "value");
  client.send("G" + test::store_field("missing"));
  EXPECT_EQ(client.read(1), "n");
}

TEST(TcpStore, AWrongSecretIsRefusedAndLogged) {
  const int port = free_port();
  WarningLog warnings;
  auto store = serve(port);
  RawStoreClient intruder(port);
  EXPECT_FALSE(intruder.prove("a guess at the secret, long enough"));
  EXPECT_TRUE(warnings.shows("dropped the connection from 127.0.0.1:"));
  EXPECT_THAT(warnings.text(), HasSubstr("did not prove the job's secret"));
  // A rank with another secret is told so, in one line.
  const std::string error = [&] {
    try {
      open_tcp_store("127.0.0.1", port, false, 2s, "another-secret-0123456789");
    } catch (const StageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  }();
  EXPECT_THAT(error,
              HasSubstr(fmt::format("rendezvous tcp:127.0.0.1:{}: the store refused", port)));
  EXPECT_THAT(error, HasSubstr("KILN_RDZV_SECRET"));
  store->set("still", "served");
  EXPECT_EQ(store->try_get("still"), "served");
}

TEST(TcpStore, AProofReplayedOnAnotherConnectionIsRefused) {
  const int port = free_port();
  WarningLog warnings;
  auto store = serve(port);
  RawStoreClient first(port);
  const std::string nonce = first.nonce();
  ASSERT_EQ(nonce.size(), 32u);
  const std::string recorded = test::store_proof(kSecret, nonce);
  first.send(recorded);
  ASSERT_EQ(first.read(1), "a");
  RawStoreClient replay(port);
  const std::string second_nonce = replay.nonce();
  EXPECT_NE(second_nonce, nonce) << "every connection gets a fresh nonce";
  replay.send(recorded);
  EXPECT_TRUE(replay.closed_within(2s));
  EXPECT_TRUE(warnings.shows("did not prove the job's secret"));
}

TEST(TcpStore, ANoSecretOrAShortOneIsAConfigError) {
  for (const std::string secret : {"", "short"}) {
    try {
      open_tcp_store("127.0.0.1", free_port(), true, 1s, secret);
      ADD_FAILURE() << "no error for '" << secret << "'";
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(), HasSubstr("KILN_RDZV_SECRET")) << secret;
      EXPECT_THAT(e.what(), HasSubstr("openssl rand -hex 32")) << secret;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  }
}

// The finding of issue 14: one byte of a message used to stall the server for
// everyone. Now the others are served at once and the staller is dropped after
// the message deadline.
TEST(TcpStore, AClientThatStopsMidMessageStallsNoOneAndIsDropped) {
  const int port = free_port();
  WarningLog warnings;
  auto store = serve(port);
  RawStoreClient mid_message(port);
  ASSERT_TRUE(mid_message.prove(kSecret));
  mid_message.send("S");
  RawStoreClient mid_handshake(port);
  ASSERT_EQ(mid_handshake.nonce().size(), 32u);
  mid_handshake.send("x");
  const auto start = std::chrono::steady_clock::now();
  auto rank = open_tcp_store("127.0.0.1", port, false, 5s, kSecret);
  for (int i = 0; i < 100; ++i) {
    rank->set("hb.1", std::to_string(i));
    EXPECT_EQ(store->try_get("hb.1"), std::to_string(i));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "the stalled clients held others up";
  EXPECT_TRUE(mid_message.closed_within(kStoreMessageDeadline + 2s));
  EXPECT_TRUE(mid_handshake.closed_within(2s));
  EXPECT_TRUE(warnings.shows("sent 1 bytes of a message and not the rest within 5 s"));
  EXPECT_TRUE(warnings.shows("did not prove the secret within 5 s"));
}

// Handshakes that another host leaves hanging fill only that host's share of the
// pending slots: a rank from elsewhere is admitted at once.
TEST(TcpStore, OneHostsStalledHandshakesLockOutNoOtherHost) {
  const int port = free_port();
  WarningLog warnings;
  auto store = serve(port);
  std::vector<std::unique_ptr<RawStoreClient>> stalled;
  for (std::size_t i = 0; i < kStoreMaxPendingPerHost; ++i) {
    stalled.push_back(std::make_unique<RawStoreClient>(port, "127.0.0.1", 0ms, "127.0.0.2"));
    ASSERT_EQ(stalled.back()->nonce().size(), 32u) << i;
  }
  RawStoreClient one_more(port, "127.0.0.1", 0ms, "127.0.0.2");
  EXPECT_TRUE(one_more.closed_within(2s));
  EXPECT_TRUE(warnings.shows(
      fmt::format("{} others from 127.0.0.2 are in their handshake", kStoreMaxPendingPerHost)));
  const auto start = std::chrono::steady_clock::now();
  auto rank = open_tcp_store("127.0.0.1", port, false, 5s, kSecret);
  rank->set("joined", "1");
  EXPECT_EQ(store->try_get("joined"), "1");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "the stalled host held a rank up";
}

// A flood of bad connections gets a bounded number of warning lines, then one
// line that counts the rest, and the job's store keeps serving.
TEST(TcpStore, AFloodOfBadConnectionsLogsABoundedNumberOfLines) {
  const int port = free_port();
  WarningLog warnings;
  auto store = serve(port);
  const std::size_t flood = kStoreWarningsPerWindow + 30;
  for (std::size_t i = 0; i < flood; ++i) {
    RawStoreClient intruder(port);
    ASSERT_FALSE(intruder.prove("a guess at the secret, long enough")) << i;
  }
  auto rank = open_tcp_store("127.0.0.1", port, false, 5s, kSecret);
  rank->set("k", "v");
  EXPECT_EQ(store->try_get("k"), "v");
  const auto count = [&](const std::string& part) {
    const std::string text = warnings.text();
    std::size_t n = 0;
    for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
      ++n;
    return n;
  };
  EXPECT_EQ(count("did not prove the job's secret"), kStoreWarningsPerWindow);
  EXPECT_TRUE(warnings.shows(fmt::format("30 more warnings about connections in {} s were not "
                                         "logged",
                                         kStoreWarningWindow.count()),
                             kStoreWarningWindow + 2s));
}

TEST(TcpStore, OversizedKeysAndValuesAreRefusedAndLogged) {
  const int port = free_port();
  WarningLog warnings;
  auto store = serve(port);
  RawStoreClient big_key(port), big_value(port);
  ASSERT_TRUE(big_key.prove(kSecret));
  ASSERT_TRUE(big_value.prove(kSecret));
  big_key.send("S" + test::store_length(kStoreMaxKeyBytes + 1));
  big_value.send("S" + test::store_field("k") + test::store_length(kStoreMaxValueBytes + 1));
  EXPECT_TRUE(big_key.closed_within(1s));
  EXPECT_TRUE(big_value.closed_within(1s));
  EXPECT_TRUE(warnings.shows(fmt::format("a key of {} bytes, over the cap of {}",
                                         kStoreMaxKeyBytes + 1, kStoreMaxKeyBytes)));
  EXPECT_TRUE(warnings.shows(fmt::format("a value of {} bytes, over the cap of {}",
                                         kStoreMaxValueBytes + 1, kStoreMaxValueBytes)));
  EXPECT_EQ(store->try_get("k"), std::nullopt);
  // A value at the cap is fine; the client refuses one over it before sending.
  store->set("k", std::string(kStoreMaxValueBytes, 'v'));
  EXPECT_EQ(store->try_get("k")->size(), kStoreMaxValueBytes);
  EXPECT_THROW(store->set("k", std::string(kStoreMaxValueBytes + 1, 'v')), StageError);
}

TEST(TcpStore, AnUnknownRequestIsDroppedAndLogged) {
  const int port = free_port();
  WarningLog warnings;
  auto store = serve(port);
  RawStoreClient client(port);
  ASSERT_TRUE(client.prove(kSecret));
  client.send("D");
  EXPECT_TRUE(client.closed_within(1s));
  EXPECT_TRUE(warnings.shows("sent an unknown request (first byte 0x44)"));
}

}  // namespace
}  // namespace kiln::dist
