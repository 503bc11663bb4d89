// `kiln bench` end to end (issue 15, acceptance 1 and 2): the ops suite run twice on
// one build compares clean, a 2x slowdown injected into one benchmark
// (KILN_BENCH_INJECT_SLOWDOWN, ops_benchmark.cpp) exits 4 naming it; the train suite
// with the PyTorch peer records kiln/peer ratios in a run the MLflow client reads;
// bad arguments get one line, exit 2, and no bench run.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <kiln/registry/mlflow_store.h>

#include "cli/cli_fixture.h"
#include "registry/registry_test_support.h"

namespace kiln::test {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Two benchmarks of a few hundred microseconds, five repeats (processes) of 0.1 s
// each: about two seconds per run. (BM_SoftmaxCrossEntropy, 16 us of scalar double
// exp, moved by 1.5x with the machine's slow spells between runs: it is left out.)
// Threshold 0.5: on the 2-core development VM a slow spell moved every benchmark of
// a run started seconds after another by up to 1.39x, with spreads of 1-4% inside
// each run; the injected slowdown comes out at 2.3-3x.
const std::vector<std::string> kOps = {
    "bench",       "ops",
    "--repeat",    "5",
    "--min-time",  "0.1",
    "--threshold", "0.5",
    "--filter",    "^(BM_AdamWStep|BM_GemmLinearForward/128/3136/128)$"};

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// The bench runs of the registry, through kiln's own reader.
std::vector<registry::RunInfo> bench_runs(const fs::path& registry_root) {
  const registry::MlflowStore store(registry_root);
  const auto experiment = store.find_experiment("bench");
  return experiment ? store.list_runs(*experiment) : std::vector<registry::RunInfo>{};
}

class BenchCliTest : public CliTest {
 protected:
  // On one thread: with two, BM_AdamWStep (split over the threads) came out at 99-122
  // or 177-218 us from one process to the next, and a second run on the same build
  // failed the gate at 1.39x.
  CommandResult ops(const std::vector<std::string>& more,
                    std::map<std::string, std::string> env = {}) {
    env.emplace("KILN_NUM_THREADS", "1");
    return kiln(with(kOps, more), env);
  }
};

TEST_F(BenchCliTest, CompareCatchesAnInjectedSlowdownAndPassesOnTheSameBuild) {
  const CommandResult first = ops({});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("ops/BM_AdamWStep "));

  const CommandResult again = ops({"--compare", "latest"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_THAT(again.out, HasSubstr("compared with bench run " + bench_runs(registry())[0].run_id));

  const CommandResult slowed =
      ops({"--compare", "latest"}, {{"KILN_BENCH_INJECT_SLOWDOWN", "BM_AdamWStep"}});
  EXPECT_EQ(slowed.exit_code, 4) << slowed.out << slowed.err;
  EXPECT_THAT(slowed.err, HasSubstr("kiln: gate failed: bench: 1 measurement regressed against "
                                    "bench run " +
                                    bench_runs(registry())[1].run_id + ": ops/BM_AdamWStep "));

  // The comparison stays with the run, and its page shows it.
  const auto runs = bench_runs(registry());
  ASSERT_EQ(runs.size(), 3u);
  const fs::path run_dir = registry() / "mlruns" / runs[2].experiment_id / runs[2].run_id;
  EXPECT_EQ(read_text(run_dir / "tags" / "kiln.bench.compared_to"), runs[1].run_id);
  const json comparison = json::parse(read_text(run_dir / "artifacts" / "comparison.json"));
  ASSERT_EQ(comparison["rows"].size(), 2u);
  // The other benchmark may come out faster (a slow spell of the machine during an
  // earlier run), never regressed.
  for (const json& row : comparison["rows"])
    if (row["name"] == "ops/BM_AdamWStep")
      EXPECT_EQ(row["verdict"], "REGRESSED") << row;
    else
      EXPECT_THAT(row["verdict"].get<std::string>(), ::testing::AnyOf("same", "faster")) << row;
  const CommandResult page = kiln({"report", runs[2].run_id, "-o", "bench.html"});
  ASSERT_EQ(page.exit_code, 0) << page.err;
  const std::string html = read_text(dir_ / "bench.html");
  EXPECT_THAT(html, HasSubstr("Compared with bench run " + runs[1].run_id));
  EXPECT_THAT(html, HasSubstr("<td>REGRESSED</td>"));
  EXPECT_THAT(html, HasSubstr("<td>cpu_isa</td>"));
}

// The Fashion-MNIST file names, holding the synthetic task (uncompressed IDX).
void write_train_data(const fs::path& dir) {
  write_synthetic_idx(dir, "synthetic", 1280, 3);
  fs::rename(dir / "synthetic-images.idx", dir / "train-images-idx3-ubyte");
  fs::rename(dir / "synthetic-labels.idx", dir / "train-labels-idx1-ubyte");
}

TEST_F(BenchCliTest, TrainWithThePeerRecordsRatiosTheMlflowClientReads) {
  const CommandResult torch = run_command({KILN_PYTHON, "-c", "import torch"});
  ASSERT_EQ(torch.exit_code, 0) << KILN_PYTHON
      " cannot import torch (tools/install-deps.sh "
      "installs python3-torch): "
                                << torch.err;
  write_train_data(dir_ / "data");
  const CommandResult result = kiln({"bench", "train", "--peer", "torch", "--repeat", "2",
                                     "--window", "2", "--threads", "1", "--data", "data"},
                                    {{"KILN_PYTHON", KILN_PYTHON}});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  for (const char* model : {"mlp", "cnn"})
    EXPECT_THAT(result.out, HasSubstr(fmt::format("train/{}/ratio ", model)));

  const auto view =
      registry::testing::run_mlflow_reader({"dump", (registry() / "mlruns").string(), "bench"});
  ASSERT_EQ(view.summary["runs"].size(), 1u) << view.summary.dump();
  const json& run = view.summary["runs"][0];
  EXPECT_EQ(run["status"], "FINISHED");
  for (const char* model : {"mlp", "cnn"}) {
    const std::string key = fmt::format("train/{}/", model);
    const double kiln_rate = run["latest_metrics"][key + "samples_per_s"];
    const double torch_rate = run["latest_metrics"][key + "torch_samples_per_s"];
    EXPECT_GT(kiln_rate, 0);
    EXPECT_GT(torch_rate, 0);
    // The ratio is the median of paired ratios: near the ratio of the medians.
    EXPECT_NEAR(run["latest_metrics"][key + "ratio"].get<double>(), kiln_rate / torch_rate,
                0.5 * kiln_rate / torch_rate);
  }
  EXPECT_EQ(run["tags"]["kiln.bench.threads"], "1");
  EXPECT_FALSE(run["tags"]["kiln.bench.torch"].get<std::string>().empty());
  EXPECT_FALSE(run["tags"]["kiln.bench.cpu"].get<std::string>().empty());
  // Chosen once by the bench, from the load it found (other tests may run beside it).
  EXPECT_THAT(run["tags"]["kiln.bench.omp_wait_policy"].get<std::string>(),
              ::testing::AnyOf(::testing::Eq("unset"),
                               ::testing::StartsWith("PASSIVE (other processes kept")));
  EXPECT_THAT(run["artifacts"].dump(), HasSubstr("bench.json"));
}

// One line, exit 2, and no bench run (nor a bench experiment) left behind.
TEST_F(BenchCliTest, BadArgumentsGetOneLineAndNoRun) {
  write_text(dir_ / "empty" / ".keep", "");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"bench", "nosuch"}, "suites: nosuch not in {ops,data,train,dist,gpu}"},
      {{"bench", "ops", "--repeat", "0"}, "bench --repeat: must be >= 1"},
      {{"bench", "train", "--peer", "jax"}, "bench --peer: unknown peer 'jax' (torch)"},
      {{"bench", "ops", "--threshold", "0"}, "bench --threshold: must be > 0"},
      {{"bench", "ops", "--compare", "latest"}, "holds no finished bench run yet"},
      {{"bench", "ops", "--compare", "0123456789abcdef0123456789abcdef"},
       "0123456789abcdef0123456789abcdef"},
      {{"bench", "train", "--data", "empty"}, "empty/train-images-idx3-ubyte.gz: not found"},
      {{"bench", "train", "--data", "data", "--models", "mlp,rnn"}, "unknown model 'rnn'"},
      {{"bench", "ops", "--filter", "^nothing$"}, "--filter '^nothing$' matches none"},
  };
  write_train_data(dir_ / "data");
  for (const auto& [args, message] : cases) {
    const CommandResult result = kiln(args);
    EXPECT_EQ(result.exit_code, 2) << args[1] << ": " << result.err;
    EXPECT_THAT(result.err, HasSubstr(message));
    EXPECT_EQ(lines_of(result.err).size(), 1u) << result.err;  // nothing ran before it
  }
  const CommandResult missing =
      kiln({"bench", "ops"}, {{"KILN_BENCH_DIR", (dir_ / "empty").string()}});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err,
              HasSubstr("bench ops: ops_benchmark is not in " + (dir_ / "empty").string()));
  EXPECT_TRUE(bench_runs(registry()).empty());
}

// A run that is not a bench run cannot be compared with.
TEST_F(BenchCliTest, ComparingWithAPipelineRunIsRefused) {
  ASSERT_EQ(kiln({"run", "p.yaml"}).exit_code, 0);
  const registry::MlflowStore store(registry());
  const auto runs = store.list_runs(*store.find_experiment("synthetic"));
  const CommandResult result = kiln(with(kOps, {"--compare", runs[0].run_id}));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("run " + runs[0].run_id + " is not a bench run"));
  EXPECT_TRUE(bench_runs(registry()).empty());
}

}  // namespace
}  // namespace kiln::test
