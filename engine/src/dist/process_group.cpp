#include <kiln/dist/process_group.h>
#include <kiln/error.h>
#include <kiln/log.h>

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <regex>
#include <thread>

#include "dist/backends.h"
#include "dist/watchdog.h"

namespace kiln::dist {

ProcessGroup::ProcessGroup(int rank, int size, std::shared_ptr<GroupState> state)
    : rank_(rank), size_(size), state_(std::move(state)) {}

ProcessGroup::~ProcessGroup() = default;

std::chrono::milliseconds ProcessGroup::timeout() const noexcept { return state_->timeout; }
void ProcessGroup::set_timeout(std::chrono::milliseconds timeout) noexcept {
  state_->timeout = timeout;
}
std::uint64_t ProcessGroup::sequence() const noexcept { return state_->sequence; }

namespace {

// A rank that gives up because another one failed fails with the root cause's kind
// (and so its exit code: a gate refusal on rank 0 ends every rank with 4, not 3).
// announce_failure() puts "[exit N] " before the reason that travels to the others.
ErrorKind root_cause_kind(const std::string& text) {
  static const std::regex tag(R"(aborted:? \(?\[exit (\d+)\])");
  std::smatch match;
  if (!std::regex_search(text, match, tag)) return ErrorKind::Stage;
  const int code = std::stoi(match[1]);
  for (const ErrorKind kind :
       {ErrorKind::Config, ErrorKind::Plugin, ErrorKind::Data, ErrorKind::Stage, ErrorKind::Gate,
        ErrorKind::Interrupted, ErrorKind::Internal})
    if (exit_code(kind) == code) return kind;
  return ErrorKind::Stage;
}

}  // namespace

template <typename F>
auto ProcessGroup::guarded(const char* name, std::size_t bytes, F&& body) {
  GroupState& state = *state_;
  if (!state.failure.empty())
    throw StageError(fmt::format("{} on rank {}: the process group failed earlier: {}", name, rank_,
                                 state.failure));
  const std::uint64_t sequence = ++state.sequence;
  const auto start = std::chrono::steady_clock::now();
  try {
    state.watchdog->enter(sequence, name);
    return body();
  } catch (const std::exception& error) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string what =
        bytes > 0 ? fmt::format("{} of {} bytes", name, bytes) : std::string(name);
    state.failure = dynamic_cast<const StageError*>(&error) != nullptr
                        ? error.what()
                        : state.watchdog->diagnose(sequence, what, seconds, error.what());
    state.watchdog->mark_aborted(state.failure);
    log::error("{}", state.failure);
    throw Error(root_cause_kind(state.failure), state.failure);
  }
}

void ProcessGroup::all_reduce(Tensor& tensor, ReduceOp op) {
  if (tensor.dtype() != DType::F32)
    throw InternalError("all_reduce: only float32 tensors are reduced");
  const bool on_device = !tensor.device().is_cpu();
  guarded("all_reduce", tensor.nbytes(), [&] {
    do_all_reduce(tensor.data<float>(), static_cast<std::size_t>(tensor.numel()), op, on_device);
  });
}

void ProcessGroup::all_reduce(std::span<float> data, ReduceOp op) {
  guarded("all_reduce", data.size_bytes(),
          [&] { do_all_reduce(data.data(), data.size(), op, false); });
}

void ProcessGroup::broadcast(Tensor& tensor, int root) {
  if (root < 0 || root >= size_)
    throw InternalError(fmt::format("broadcast: root {} outside [0, {})", root, size_));
  const bool on_device = !tensor.device().is_cpu();
  guarded("broadcast", tensor.nbytes(),
          [&] { do_broadcast(tensor.raw(), tensor.nbytes(), root, on_device); });
}

void ProcessGroup::barrier() {
  guarded("barrier", 0, [&] { do_barrier(); });
}

std::vector<std::string> ProcessGroup::all_gather(const std::string& bytes) {
  return guarded("all_gather", bytes.size(), [&] { return do_all_gather(bytes); });
}

void ProcessGroup::wait_for(const std::function<bool()>& ready, const std::string& what) {
  auto pause = std::chrono::milliseconds(1);
  while (!ready()) {
    std::optional<std::string> problem = state_->watchdog->peer_abort();
    if (!problem) problem = state_->watchdog->dead_peer();
    if (problem)
      throw Error(root_cause_kind(*problem),
                  fmt::format("rank {} stopped waiting for {}: {}", rank_, what, *problem));
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

void ProcessGroup::announce_failure(const std::string& why, ErrorKind kind) {
  state_->watchdog->mark_aborted(fmt::format("[exit {}] {}", exit_code(kind), why));
}

Store& ProcessGroup::store() { return *state_->store; }

std::unique_ptr<ProcessGroup> ProcessGroup::device_group(Device device) {
  if (!device.is_cuda())
    throw InternalError("device_group: " + device.str() + " is not a CUDA device");
#ifdef KILN_HAVE_CUDA
  // The id's key carries the set-up's number: a pipeline may set up several.
  const std::string key = fmt::format("nccl.id.{}", sequence() + 1);
  return guarded("nccl_init", 0,
                 [&] { return make_nccl_group(rank_, size_, device, state_, key); });
#else
  throw ConfigError("CUDA tensors need the NCCL backend, and this kiln is built without CUDA");
#endif
}

void ProcessGroup::shutdown() {
  barrier();
  state_->watchdog->stop();
  // After this barrier no rank touches the store again: rank 0 may stop serving it.
  guarded("barrier", 0, [&] { do_barrier(); });
}

GroupOptions group_options_from_env(const EnvLookup& env) {
  GroupOptions options;
  if (const char* text = env("KILN_COLLECTIVE_TIMEOUT_S"); text != nullptr && *text != '\0') {
    double seconds = 0;
    const std::string_view view(text);
    const auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), seconds);
    if (ec != std::errc() || end != view.data() + view.size() || !(seconds > 0))
      throw ConfigError(fmt::format(
          "environment variable KILN_COLLECTIVE_TIMEOUT_S='{}': expected seconds > 0", text));
    options.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1e3));
  }
  if (const char* host = env("KILN_GLOO_HOSTNAME"); host != nullptr && *host != '\0')
    options.hostname = host;
  if (const char* secret = env("KILN_RDZV_SECRET"); secret != nullptr) options.rdzv_secret = secret;
  return options;
}

std::unique_ptr<ProcessGroup> init_process_group(const DistEnv& env, const std::string& rendezvous,
                                                 GroupOptions options) {
  const RendezvousSpec spec = parse_rendezvous(rendezvous, "rendezvous");
  // A peer that dies closes its sockets; writing to one must fail with EPIPE (and
  // reach the watchdog), not kill this process with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  std::shared_ptr<Store> store = open_store(spec, env.rank, options.timeout, options.rdzv_secret);
  if (options.hostname.empty()) {
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    options.hostname = name;
  }
  log::debug("dist: rank {} of {} ({}), rendezvous {}, timeout {:.1f} s", env.rank, env.world_size,
             env.launcher, store->describe(), options.timeout.count() / 1e3);
  auto state = std::make_shared<GroupState>();
  state->timeout = options.timeout;
  state->watchdog = std::make_unique<Watchdog>(store, env.rank, env.world_size, options.heartbeat);
  state->store = std::move(store);
  return make_gloo_group(env, std::move(state), options);
}

}  // namespace kiln::dist
