#include <kiln/dist/store.h>
#include <kiln/error.h>

#include <fmt/format.h>

#include <charconv>
#include <thread>

namespace kiln::dist {

Store::~Store() = default;

std::string Store::get(const std::string& key, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    if (auto value = try_get(key)) return *value;
    if (std::chrono::steady_clock::now() >= deadline)
      throw StageError(fmt::format("rendezvous {}: key '{}' did not appear within {:.1f} s",
                                   describe(), key, timeout.count() / 1e3));
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

RendezvousSpec parse_rendezvous(std::string_view text, std::string_view origin) {
  RendezvousSpec spec;
  const auto bad = [&](std::string_view why) {
    return ConfigError(
        fmt::format("{} '{}': {} (expected file:DIR or tcp:HOST:PORT)", origin, text, why));
  };
  if (text.starts_with("file:")) {
    spec.dir = std::string(text.substr(5));
    if (spec.dir.empty()) throw bad("no directory");
    return spec;
  }
  if (!text.starts_with("tcp:")) throw bad("unknown kind");
  spec.kind = RendezvousSpec::Kind::Tcp;
  const std::string_view rest = text.substr(4);
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) throw bad("no host or no port");
  spec.host = std::string(rest.substr(0, colon));
  if (spec.host.front() == '[' && spec.host.back() == ']')
    spec.host = spec.host.substr(1, spec.host.size() - 2);
  const std::string_view port = rest.substr(colon + 1);
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), spec.port);
  if (ec != std::errc() || end != port.data() + port.size() || spec.port < 1 || spec.port > 65535)
    throw bad("the port must be a number in 1..65535");
  return spec;
}

std::unique_ptr<Store> open_store(const RendezvousSpec& spec, int rank,
                                  std::chrono::milliseconds timeout) {
  if (spec.kind == RendezvousSpec::Kind::File) return open_file_store(spec.dir);
  return open_tcp_store(spec.host, spec.port, rank == 0, timeout);
}

}  // namespace kiln::dist
