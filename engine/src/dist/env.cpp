#include <kiln/dist/env.h>
#include <kiln/error.h>

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>

namespace kiln::dist {
namespace {

const char* lookup(const EnvLookup& env, const char* name) {
  const char* value = env(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

int parse_int(const char* text, const char* name) {
  int value = 0;
  const std::string_view view(text);
  const auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), value);
  if (ec != std::errc() || end != view.data() + view.size())
    throw ConfigError(fmt::format("environment variable {}='{}': expected an integer", name, text));
  return value;
}

// One launcher's variable names; local_rank may be absent (then 0).
struct Launcher {
  const char* name;
  const char* rank;
  const char* world;
  const char* local_rank;
};

constexpr Launcher kLaunchers[] = {
    {"kiln", "KILN_RANK", "KILN_WORLD_SIZE", "KILN_LOCAL_RANK"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
    {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
};

void read_slurm(const EnvLookup& env, DistEnv& out) {
  const char* list_name = "SLURM_NODELIST";
  const char* list = lookup(env, list_name);
  if (list == nullptr) list = lookup(env, list_name = "SLURM_JOB_NODELIST");
  if (list != nullptr) out.nodes = expand_nodelist(list, list_name);
  if (const char* job = lookup(env, "SLURM_JOB_ID")) {
    out.job_id = job;
    if (const char* step = lookup(env, "SLURM_STEP_ID")) out.job_id += fmt::format(".{}", step);
    // A requeued job keeps its id: its restarts must not meet the old keys.
    if (const char* restart = lookup(env, "SLURM_RESTART_COUNT"))
      out.job_id += fmt::format(".r{}", restart);
  }
}

// torchrun serves a PyTorch TCPStore on MASTER_ADDR:MASTER_PORT itself when it
// exports TORCHELASTIC_USE_AGENT_STORE=True (its default; torch compares the value
// with str(True), so exactly "True"): every rank is a client of that store, kiln's
// keys under kiln/attempt_<TORCHELASTIC_RESTART_COUNT>/ so that a restarted
// attempt never reads the keys of the one before. Otherwise rank 0 serves kiln's
// own TCP store there.
void read_torchrun(const EnvLookup& env, DistEnv& out) {
  const char* addr = lookup(env, "MASTER_ADDR");
  const char* port = lookup(env, "MASTER_PORT");
  if (addr == nullptr || port == nullptr) return;
  const int port_number = parse_int(port, "MASTER_PORT");
  const char* agent_store = lookup(env, "TORCHELASTIC_USE_AGENT_STORE");
  if (agent_store == nullptr || std::string_view(agent_store) != "True") {
    out.rendezvous = fmt::format("tcp:{}:{}", addr, port_number);
    return;
  }
  const char* restart = lookup(env, "TORCHELASTIC_RESTART_COUNT");
  out.rendezvous = fmt::format("torch:{}:{}/kiln/attempt_{}/", addr, port_number,
                               restart ? parse_int(restart, "TORCHELASTIC_RESTART_COUNT") : 0);
}

// "tcp:PORT" names no host: the first Slurm node or MASTER_ADDR serves the store.
std::string complete_tcp(const std::string& spec, const DistEnv& out, const EnvLookup& env) {
  if (spec.rfind("tcp:", 0) != 0 || spec.find(':', 4) != std::string::npos) return spec;
  const char* master = lookup(env, "MASTER_ADDR");
  if (!out.nodes.empty()) return fmt::format("tcp:{}:{}", out.nodes.front(), spec.substr(4));
  if (master != nullptr) return fmt::format("tcp:{}:{}", master, spec.substr(4));
  throw ConfigError(
      fmt::format("KILN_RDZV={}: no host given and neither SLURM_NODELIST nor "
                  "MASTER_ADDR names one; use tcp:HOST:PORT",
                  spec));
}

}  // namespace

EnvLookup process_env() {
  return [](const char* name) { return std::getenv(name); };
}

DistEnv detect_env(const EnvLookup& env) {
  DistEnv out;
  for (const Launcher& launcher : kLaunchers) {
    const char* rank = lookup(env, launcher.rank);
    const char* world = lookup(env, launcher.world);
    if (rank == nullptr || world == nullptr) continue;
    out.launcher = launcher.name;
    out.rank = parse_int(rank, launcher.rank);
    out.world_size = parse_int(world, launcher.world);
    if (const char* local = lookup(env, launcher.local_rank))
      out.local_rank = parse_int(local, launcher.local_rank);
    if (out.world_size < 1)
      throw ConfigError(fmt::format("environment variable {}={}: must be at least 1",
                                    launcher.world, out.world_size));
    if (out.rank < 0 || out.rank >= out.world_size)
      throw ConfigError(fmt::format("environment variable {}={}: must lie in [0, {}) ({}={})",
                                    launcher.rank, out.rank, out.world_size, launcher.world,
                                    out.world_size));
    if (out.local_rank < 0)
      throw ConfigError(fmt::format("environment variable {}={}: must be >= 0", launcher.local_rank,
                                    out.local_rank));
    break;
  }
  if (out.launcher == "slurm") read_slurm(env, out);
  if (out.launcher == "torchrun") read_torchrun(env, out);
  if (out.launcher == "openmpi")
    if (const char* job = lookup(env, "OMPI_MCA_ess_base_jobid")) out.job_id = job;
  if (const char* rdzv = lookup(env, "KILN_RDZV")) out.rendezvous = complete_tcp(rdzv, out, env);
  return out;
}

namespace {

// Expands the first bracket group of one host expression, recursing on the rest.
void expand_host(const std::string& host, std::string_view origin, std::vector<std::string>& out) {
  const std::size_t open = host.find('[');
  if (open == std::string::npos) {
    if (host.find(']') != std::string::npos)
      throw ConfigError(fmt::format("{}: '{}' has ']' without '['", origin, host));
    out.push_back(host);
    return;
  }
  const std::size_t close = host.find(']', open);
  if (close == std::string::npos)
    throw ConfigError(fmt::format("{}: '{}' has '[' without ']'", origin, host));
  const std::string prefix = host.substr(0, open), suffix = host.substr(close + 1);
  const std::string ranges = host.substr(open + 1, close - open - 1);
  std::size_t start = 0;
  while (start <= ranges.size()) {
    std::size_t comma = ranges.find(',', start);
    if (comma == std::string::npos) comma = ranges.size();
    const std::string range = ranges.substr(start, comma - start);
    const std::size_t dash = range.find('-');
    const std::string first = range.substr(0, dash);
    const std::string last = dash == std::string::npos ? first : range.substr(dash + 1);
    const auto digits = [](const std::string& s) {
      return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() < 10;
    };
    if (!digits(first) || !digits(last))
      throw ConfigError(
          fmt::format("{}: '{}' in '{}' is not a number or a range a-b", origin, range, host));
    const long lo = std::stol(first), hi = std::stol(last);
    if (hi < lo)
      throw ConfigError(fmt::format("{}: range '{}' in '{}' runs backwards", origin, range, host));
    for (long i = lo; i <= hi; ++i)
      expand_host(prefix + fmt::format("{:0{}}", i, first.size()) + suffix, origin, out);
    start = comma + 1;
  }
}

}  // namespace

std::vector<std::string> expand_nodelist(std::string_view list, std::string_view origin) {
  std::vector<std::string> hosts;
  int depth = 0;
  std::string current;
  const auto flush = [&] {
    if (current.empty()) throw ConfigError(fmt::format("{}='{}': empty host name", origin, list));
    expand_host(current, origin, hosts);
    current.clear();
  };
  for (const char c : list) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth < 0 || depth > 1)
      throw ConfigError(fmt::format("{}='{}': unbalanced brackets", origin, list));
    if (c == ',' && depth == 0) {
      flush();
      continue;
    }
    current += c;
  }
  if (depth != 0) throw ConfigError(fmt::format("{}='{}': unbalanced brackets", origin, list));
  flush();
  return hosts;
}

std::string default_rendezvous(const DistEnv& env, const std::filesystem::path& registry_root) {
  if (!env.rendezvous.empty()) return env.rendezvous;
  if (env.job_id.empty())
    throw ConfigError(fmt::format(
        "{} ranks started by {} have no rendezvous: set KILN_RDZV (or --rdzv) to file:DIR on a "
        "shared file system or tcp:HOST:PORT",
        env.world_size, env.launcher));
  return fmt::format("file:{}", (std::filesystem::absolute(registry_root) / "rdzv" /
                                 fmt::format("{}-{}", env.launcher, env.job_id))
                                    .lexically_normal()
                                    .string());
}

}  // namespace kiln::dist
