#include <kiln/dist/store.h>
#include <kiln/error.h>

#include <fmt/format.h>

#include <charconv>
#include <functional>
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

namespace {

// "HOST:PORT" (HOST may be "[v6 address]") into spec.host and spec.port.
void parse_address(std::string_view text, RendezvousSpec& spec,
                   const std::function<ConfigError(std::string_view)>& bad) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) throw bad("no host or no port");
  spec.host = std::string(text.substr(0, colon));
  if (spec.host.front() == '[' && spec.host.back() == ']')
    spec.host = spec.host.substr(1, spec.host.size() - 2);
  const std::string_view port = text.substr(colon + 1);
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), spec.port);
  if (ec != std::errc() || end != port.data() + port.size() || spec.port < 1 || spec.port > 65535)
    throw bad("the port must be a number in 1..65535");
}

}  // namespace

RendezvousSpec parse_rendezvous(std::string_view text, std::string_view origin) {
  RendezvousSpec spec;
  const std::function<ConfigError(std::string_view)> bad = [&](std::string_view why) {
    return ConfigError(
        fmt::format("{} '{}': {} (expected file:DIR, tcp:HOST:PORT or torch:HOST:PORT[/PREFIX])",
                    origin, text, why));
  };
  if (text.starts_with("file:")) {
    spec.dir = std::string(text.substr(5));
    if (spec.dir.empty()) throw bad("no directory");
    return spec;
  }
  if (text.starts_with("tcp:")) {
    spec.kind = RendezvousSpec::Kind::Tcp;
    parse_address(text.substr(4), spec, bad);
    return spec;
  }
  if (!text.starts_with("torch:")) throw bad("unknown kind");
  spec.kind = RendezvousSpec::Kind::Torch;
  const std::string_view rest = text.substr(6);
  const std::size_t slash = rest.find('/');
  parse_address(rest.substr(0, slash), spec, bad);
  spec.prefix = slash == std::string_view::npos ? "kiln/" : std::string(rest.substr(slash + 1));
  if (spec.prefix.empty()) throw bad("an empty key prefix would mix kiln's keys with torch's");
  if (spec.prefix.back() != '/') spec.prefix += '/';
  return spec;
}

std::unique_ptr<Store> open_store(const RendezvousSpec& spec, int rank,
                                  std::chrono::milliseconds timeout, const std::string& secret) {
  switch (spec.kind) {
    case RendezvousSpec::Kind::File:
      return open_file_store(spec.dir);
    case RendezvousSpec::Kind::Tcp:
      return open_tcp_store(spec.host, spec.port, rank == 0, timeout, secret);
    case RendezvousSpec::Kind::Torch:
      return open_torch_store(spec.host, spec.port, spec.prefix, timeout);
  }
  throw InternalError("open_store: unknown rendezvous kind");
}

}  // namespace kiln::dist
