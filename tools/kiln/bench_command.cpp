// kiln bench [SUITE...] [--repeat N] [--compare RUN|latest] [--peer torch]: runs the
// benchmark suites (bench_suites.h), records them as a run of the registry's
// "bench" experiment (bench_record.h) and, with --compare, sets each median against
// an earlier bench run and exits 4 when one of kiln's own figures regressed past
// what the spread of the repeats explains (docs/cli.md).
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/registry/mlflow_store.h>
#include <kiln/registry/registry_root.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "bench_record.h"
#include "bench_suites.h"
#include "commands.h"
#include "wait_policy.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;
namespace reg = kiln::registry;

struct BenchArguments {
  std::vector<std::string> suites;
  std::string compare;
  bench::SuiteOptions suite;
  bench::CompareOptions compare_options;
  std::string models = "mlp,cnn";
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Wide enough for the longest name.
std::size_t name_width(const std::vector<std::string>& names) {
  std::size_t width = 11;
  for (const std::string& name : names) width = std::max(width, name.size());
  return width;
}

void print_measurements(const bench::BenchRecord& record) {
  std::vector<std::string> names;
  for (const bench::Measurement& m : record.measurements) names.push_back(m.name);
  const std::size_t w = name_width(names);
  fmt::print("{:<{}} {:>12} {:<10} {:>7} {:>7}\n", "measurement", w, "median", "unit", "spread",
             "repeats");
  for (const bench::Measurement& m : record.measurements)
    fmt::print("{:<{}} {:>12} {:<10} {:>6.1f}% {:>7}\n", m.name, w,
               bench::figure(bench::median(m.values)), m.unit,
               100 * bench::relative_spread(m.values), m.values.size());
  for (const std::string& note : record.notes) fmt::print("note: {}\n", note);
}

void print_comparison(const std::vector<bench::Compared>& rows, const std::string& base) {
  std::vector<std::string> names;
  for (const bench::Compared& row : rows) names.push_back(row.name);
  const std::size_t w = name_width(names);
  fmt::print("\ncompared with bench run {} (slowdown: time now / time then)\n", base);
  fmt::print("{:<{}} {:>12} {:>12} {:>9} {:>9}  {}\n", "measurement", w, "then", "now", "slowdown",
             "allowed", "verdict");
  for (const bench::Compared& row : rows) {
    // A new or missing measurement has one side only: no ratio.
    const bool both = row.verdict != bench::Verdict::New && row.verdict != bench::Verdict::Missing;
    fmt::print("{:<{}} {:>12} {:>12} {:>9} {:>9}  {}{}\n", row.name, w,
               row.verdict == bench::Verdict::New ? "-" : bench::figure(row.before),
               bench::figure(row.now), both ? fmt::format("{:.2f}x", row.slowdown) : "-",
               both ? fmt::format("{:.2f}x", 1 + row.allowance) : "-",
               bench::to_string(row.verdict), row.gates ? "" : " (not gated)");
  }
}

// The id of the run --compare names ('latest' resolved); its record is read before
// any suite spends minutes.
std::string comparison_base(const reg::MlflowStore& store, const std::string& wanted) {
  if (wanted.empty()) return "";
  if (wanted == "latest") {
    const std::string latest = bench::latest_run(store);
    if (latest.empty())
      throw ConfigError(fmt::format("bench --compare latest: {} holds no finished bench run yet",
                                    store.mlruns().string()));
    return latest;
  }
  return wanted;
}

void check(const BenchArguments& arguments) {
  if (arguments.suite.repeat < 1) throw ConfigError("bench --repeat: must be >= 1");
  if (!arguments.suite.peer.empty() && arguments.suite.peer != "torch")
    throw ConfigError(fmt::format("bench --peer: unknown peer '{}' (torch)", arguments.suite.peer));
  if (arguments.compare_options.threshold <= 0)
    throw ConfigError("bench --threshold: must be > 0 (a fraction: 0.2 is 20% slower)");
  if (arguments.suite.batch < 1 || arguments.suite.window < 1)
    throw ConfigError("bench --batch and --window: must be >= 1");
  if (arguments.suite.min_time < 0) throw ConfigError("bench --min-time: must be >= 0");
}

void run_bench(BenchArguments arguments, const GlobalOptions& global) {
  check(arguments);
  arguments.suite.models = split_commas(arguments.models);
  if (arguments.suites.empty()) arguments.suites = bench::kSuites;
  reg::check_registry_root(global.registry, reg::RootAccess::Write);
  reg::MlflowStore store(global.registry);
  const std::string base_id = comparison_base(store, arguments.compare);
  const bench::BenchRecord base =
      base_id.empty() ? bench::BenchRecord{} : bench::load_record(store, base_id);

  bench::BenchRecord record;
  record.suites = arguments.suites;
  record.repeat = arguments.suite.repeat;
  record.fingerprint = bench::machine_fingerprint();
  for (const std::string& suite : arguments.suites) bench::check_suite(suite, arguments.suite);
  for (const std::string& suite : arguments.suites) {
    log::info("bench {}: {} repeat(s)", suite, arguments.suite.repeat);  // the gpu suite may skip
    bench::run_suite(suite, arguments.suite, record);
  }
  bench::add_derived(arguments.suite, record);
  const auto run =
      bench::store_record(store, record,
                          {{"suites", fmt::format("{}", fmt::join(arguments.suites, " "))},
                           {"repeat", std::to_string(arguments.suite.repeat)},
                           {"filter", arguments.suite.filter},
                           {"peer", arguments.suite.peer.empty() ? "none" : arguments.suite.peer}});
  print_measurements(record);
  fmt::print("bench run {} (experiment {})\n", run->run_id(), bench::kExperiment);
  if (base_id.empty()) return;

  const auto rows = bench::compare(base, record, arguments.compare_options);
  if (std::none_of(rows.begin(), rows.end(),
                   [](const auto& row) { return row.verdict != bench::Verdict::New; }))
    throw ConfigError(fmt::format("bench --compare {}: it measured none of {} (it ran: {})",
                                  base_id, fmt::join(arguments.suites, ", "),
                                  fmt::join(base.suites, ", ")));
  write_file_atomic(run->artifact_dir() / bench::kComparisonFile,
                    nlohmann::json{{"compared_to", base_id},
                                   {"threshold", arguments.compare_options.threshold},
                                   {"noise_factor", arguments.compare_options.noise_factor},
                                   {"rows", bench::to_json(rows)}}
                            .dump(2) +
                        "\n");
  run->set_tag("kiln.bench.compared_to", base_id);
  for (const std::string& change : bench::fingerprint_changes(base, record))
    if (!change.starts_with("engine") && !change.starts_with("commit"))
      fmt::print("note: another machine or setup than run {}: {}\n", base_id, change);
  print_comparison(rows, base_id);
  std::vector<std::string> regressed;
  for (const auto& row : rows)
    if (row.verdict == bench::Verdict::Regressed)
      regressed.push_back(fmt::format("{} {:.2f}x slower (allowed {:.2f}x)", row.name, row.slowdown,
                                      1 + row.allowance));
  if (!regressed.empty())
    throw GateError(fmt::format(
        "bench: {} regressed against bench run {}: {}",
        regressed.size() == 1 ? "1 measurement" : fmt::format("{} measurements", regressed.size()),
        base_id, fmt::join(regressed, "; ")));
}

}  // namespace

void add_bench_command(CLI::App& app, const GlobalOptions& global) {
  auto arguments = std::make_shared<BenchArguments>();
  CLI::App* command =
      app.add_subcommand("bench",
                         "Run benchmark suites, record them as a run in the registry's 'bench' "
                         "experiment, and compare with an earlier bench run");
  command->add_option("suites", arguments->suites, "ops, data, train, dist, gpu (default: all)")
      ->check(CLI::IsMember(bench::kSuites));
  command
      ->add_option("--repeat", arguments->suite.repeat,
                   "Repeats of every measurement; medians and spreads are over them")
      ->capture_default_str();
  command->add_option("--compare", arguments->compare,
                      "An earlier bench run (id, or 'latest'): print ratios, exit 4 on a "
                      "regression past the noise");
  command
      ->add_option("--threshold", arguments->compare_options.threshold,
                   "Smallest slowdown that counts as a regression, as a fraction; widened "
                   "to 3x the summed spreads (median absolute deviations) of the repeats")
      ->capture_default_str();
  command->add_option("--peer", arguments->suite.peer,
                      "train: also run the PyTorch peer (torch_peer.py, with KILN_PYTHON or "
                      "python3) and record kiln/peer ratios");
  command->add_option("--filter", arguments->suite.filter,
                      "ops, data, gpu: only the Google Benchmark names matching this regex");
  command->add_option("--min-time", arguments->suite.min_time,
                      "ops, data, gpu: seconds per benchmark repetition (0: the library's "
                      "default)");
  command
      ->add_option("--data", arguments->suite.data,
                   "train: folder with train-images-idx3-ubyte[.gz] and "
                   "train-labels-idx1-ubyte[.gz]")
      ->capture_default_str();
  command->add_option("--models", arguments->models, "train: models, of mlp and cnn")
      ->capture_default_str();
  command->add_option("--threads", arguments->suite.threads,
                      "train: threads of kiln and the peer (0: the cores available)");
  command->add_option("--batch", arguments->suite.batch, "train: batch size")
      ->capture_default_str();
  command
      ->add_option("--window", arguments->suite.window,
                   "train: steps per throughput window (the first is warm-up)")
      ->capture_default_str();
  // The wait policy is chosen once, while the machine is as the bench found it:
  // the kiln runs it starts keep that choice instead of each measuring the load
  // that the benchmark before it (the peer, say) left behind.
  command->callback([arguments, &global] {
    choose_wait_policy();
    run_bench(*arguments, global);
  });
}

}  // namespace kiln::cli
