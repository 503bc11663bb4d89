// Writers side by side: Optuna and kiln appending to one journal at once, kiln
// threads deciding under the lock, and the symlink lock itself (held, stale).
#include <gtest/gtest.h>
#include <kiln/sweep/journal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "sweep_journal/journal_test_support.h"

namespace kiln::sweep {
namespace {

using namespace std::chrono_literals;

const IntDistribution kSlot{0, 100000, false, 1};

// Creates a trial whose parameter `slot` is the number of trials the writer saw
// under the lock: it equals the trial's number only if no other writer slipped in
// between the reading and the append.
int create_slot_trial(Journal& journal, const std::string& study) {
  return journal.create_trial_with(study, [](const Study& current) {
    TrialDraft draft;
    draft.distributions = {{"slot", kSlot}};
    draft.params = {{"slot", static_cast<double>(current.trials.size())}};
    return draft;
  });
}

// Four ops: create, report, attribute, complete.
void kiln_rounds(Journal& journal, const std::string& study, int rounds, int worker) {
  for (int i = 0; i < rounds; ++i) {
    const int number = create_slot_trial(journal, study);
    journal.set_intermediate(study, number, 0, number);
    journal.set_user_attr(study, number, "worker", worker);
    journal.set_state(study, number, TrialState::Complete, number);
  }
}

bool optuna_has_written(const std::filesystem::path& file) {
  for (const std::string& line : kiln::test::lines_of(kiln::test::read_text(file)))
    if (line.find(R"("worker_id":"kiln)") == std::string::npos) return true;
  return false;
}

TEST(JournalConcurrency, OptunaAndKilnAppendAtTheSameTime) {
  kiln::test::TempDir dir;
  const auto file = dir / "race.journal";
  Journal setup(file, "kiln-setup");
  ASSERT_TRUE(setup.create_study("race", Direction::Maximize));

  std::atomic<bool> python_done{false};
  testing::OptunaResult python;
  std::thread optuna([&] {
    python = testing::run_optuna({"ask-tell", file.string(), "race", "50"});  // 200 ops
    python_done = true;
  });
  // Start once Optuna appends, so that the two really overlap.
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!python_done && !optuna_has_written(file) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  std::vector<std::thread> writers;
  for (int worker = 0; worker < 2; ++worker) {
    writers.emplace_back([&, worker] {
      Journal journal(file, "kiln-" + std::to_string(worker));
      kiln_rounds(journal, "race", 25, worker);  // 100 ops each
    });
  }
  for (auto& writer : writers) writer.join();
  optuna.join();
  KILN_REQUIRE_PYTHON(python);
  ASSERT_EQ(python.exit_code, 0) << python.output;

  // Every line is one whole op.
  const auto ops = testing::ops_of(file);
  ASSERT_EQ(ops.size(), 1u + 200u + 200u);
  std::size_t optuna_ops = 0;
  std::size_t first_optuna = ops.size();
  std::size_t last_optuna = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i]["worker_id"].get<std::string>().rfind("kiln", 0) == 0) continue;
    ++optuna_ops;
    first_optuna = std::min(first_optuna, i);
    last_optuna = i;
  }
  EXPECT_EQ(optuna_ops, 200u);
  std::size_t kiln_between = 0;
  for (std::size_t i = first_optuna; i < last_optuna; ++i)
    if (ops[i]["worker_id"].get<std::string>().rfind("kiln-", 0) == 0 &&
        ops[i]["worker_id"] != "kiln-setup")
      ++kiln_between;
  EXPECT_GT(kiln_between, 0u) << "the writers did not overlap; the test proved nothing";

  const Study study = setup.load("race");
  ASSERT_EQ(study.trials.size(), 100u);
  int kiln_trials = 0;
  for (const Trial& trial : study.trials) {
    EXPECT_EQ(trial.state, TrialState::Complete) << trial.number;
    if (!trial.params.contains("slot")) continue;
    ++kiln_trials;
    EXPECT_EQ(trial.params.at("slot"), trial.number);
    EXPECT_EQ(trial.value, trial.number);
    EXPECT_EQ(trial.intermediate.at(0), trial.number);
  }
  EXPECT_EQ(kiln_trials, 50);
  const auto optuna_view = testing::run_optuna({"view", file.string(), "race"});
  nlohmann::json seen = optuna_view.json;
  seen.erase("optuna");
  EXPECT_EQ(testing::view(study), seen);
}

// Threads of one process, through one Journal object and through several.
TEST(JournalConcurrency, KilnWritersEachSeeAllTrialsBeforeTheirs) {
  kiln::test::TempDir dir;
  const auto file = dir / "threads.journal";
  Journal shared(file, "kiln-shared");
  ASSERT_TRUE(shared.create_study("threads", Direction::Minimize));
  std::vector<std::thread> writers;
  for (int worker = 0; worker < 4; ++worker) {
    writers.emplace_back([&, worker] {
      if (worker < 2) {
        kiln_rounds(shared, "threads", 10, worker);
      } else {
        Journal own(file, "kiln-own-" + std::to_string(worker));
        kiln_rounds(own, "threads", 10, worker);
      }
    });
  }
  for (auto& writer : writers) writer.join();
  const Study study = Journal(file, "reader").load("threads");
  ASSERT_EQ(study.trials.size(), 40u);
  std::map<int, int> per_worker;
  for (const Trial& trial : study.trials) {
    EXPECT_EQ(trial.params.at("slot"), trial.number);
    EXPECT_EQ(trial.state, TrialState::Complete);
    ++per_worker[trial.user_attrs["worker"].get<int>()];
  }
  EXPECT_EQ(per_worker, (std::map<int, int>{{0, 10}, {1, 10}, {2, 10}, {3, 10}}));
  EXPECT_EQ(testing::ops_of(file).size(), 1u + 160u);
}

void release_like_optuna(const std::filesystem::path& lock) {
  const auto moved = lock.string() + "test.rename";
  ASSERT_EQ(::rename(lock.c_str(), moved.c_str()), 0);
  ASSERT_EQ(::unlink(moved.c_str()), 0);
}

TEST(JournalLock, WaitsForTheHolderAndLeavesNoLock) {
  kiln::test::TempDir dir;
  const auto file = dir / "locked.journal";
  const auto lock = dir / "locked.journal.lock";
  Journal journal(file, "kiln-test");
  ASSERT_TRUE(journal.create_study("s", Direction::Maximize));
  ASSERT_EQ(journal.create_trial("s", TrialDraft{}), 0);
  // Another writer (Optuna's lock is this symlink) holds the journal.
  ASSERT_EQ(::symlink("locked.journal", lock.c_str()), 0);
  std::atomic<bool> written{false};
  std::thread writer([&] {
    journal.set_user_attr("s", 0, "k", "v");
    written = true;
  });
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(written);
  EXPECT_EQ(testing::ops_of(file).size(), 2u);
  release_like_optuna(lock);
  writer.join();
  EXPECT_TRUE(written);
  EXPECT_EQ(testing::ops_of(file).size(), 3u);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(lock)));
  EXPECT_EQ(journal.load("s").trials[0].user_attrs, (nlohmann::json{{"k", "v"}}));
}

TEST(JournalLock, BreaksALockLeftByADeadWriter) {
  kiln::test::TempDir dir;
  const auto file = dir / "stale.journal";
  const auto lock = dir / "stale.journal.lock";
  Journal journal(file, "kiln-test", JournalOptions{250ms});
  ASSERT_TRUE(journal.create_study("s", Direction::Maximize));
  ASSERT_EQ(::symlink("stale.journal", lock.c_str()), 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(journal.create_trial("s", TrialDraft{}), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(lock)));
  EXPECT_EQ(journal.load("s").trials.size(), 1u);
}

}  // namespace
}  // namespace kiln::sweep
