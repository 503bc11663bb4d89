// Damaged journals: a torn last line (a writer killed mid-write) is left alone by
// readers and dropped by the next writer; any other unreadable line is one
// DataError naming the file and the line.
#include <gtest/gtest.h>
#include <kiln/sweep/journal.h>

#include "sweep_journal/journal_test_support.h"

namespace kiln::sweep {
namespace {

using testing::append_raw;
using testing::run_optuna;

std::string load_error(const std::filesystem::path& file) {
  try {
    Journal(file, "reader").load("s");
  } catch (const DataError& error) {
    return error.what();
  }
  return "no error";
}

const std::string kTorn = R"({"op_code":7,"worker_id":"dead","trial_id":0,"st)";

TEST(DamagedJournal, TornLastLineIsSkippedThenDropped) {
  kiln::test::TempDir dir;
  const auto file = dir / "torn.journal";
  Journal journal(file, "kiln-test");
  ASSERT_TRUE(journal.create_study("s", Direction::Maximize));
  ASSERT_EQ(journal.create_trial("s", TrialDraft{}), 0);
  append_raw(file, kTorn);

  // Readers leave the torn line alone, as Optuna does.
  EXPECT_EQ(Journal(file, "reader").load("s").trials[0].intermediate.size(), 0u);
  const auto before = run_optuna({"view", file.string(), "s"});
  KILN_REQUIRE_PYTHON(before);
  ASSERT_TRUE(before.json.is_object()) << before.output;
  EXPECT_EQ(before.json["trials"][0]["intermediate"], nlohmann::json::object());

  // The next writer drops it instead of gluing its own op onto it.
  journal.set_intermediate("s", 0, 5, 0.25);
  const std::string text = kiln::test::read_text(file);
  EXPECT_EQ(text.find("dead"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
  const auto ops = testing::ops_of(file);
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(ops[2]["intermediate_value"], 0.25);
  EXPECT_EQ(journal.load("s").trials[0].intermediate, (std::map<std::int64_t, double>{{5, 0.25}}));
  const auto after = run_optuna({"view", file.string(), "s"});
  ASSERT_TRUE(after.json.is_object()) << after.output;
  EXPECT_EQ(after.json["trials"][0]["intermediate"], (nlohmann::json{{"5", 0.25}}));
}

TEST(DamagedJournal, LineBeingWrittenIsReadOnceComplete) {
  kiln::test::TempDir dir;
  const auto file = dir / "partial.journal";
  Journal journal(file, "kiln-test");
  ASSERT_TRUE(journal.create_study("s", Direction::Maximize));
  ASSERT_EQ(journal.create_trial("s", TrialDraft{}), 0);
  Journal reader(file, "reader");
  append_raw(file, R"({"op_code":8,"worker_id":"w","trial_id":0,)");
  EXPECT_EQ(reader.load("s").trials[0].user_attrs, nlohmann::json::object());
  append_raw(file, R"("user_attr":{"k":1}})"
                   "\n");
  EXPECT_EQ(reader.load("s").trials[0].user_attrs, (nlohmann::json{{"k", 1}}));
}

TEST(DamagedJournal, GarbageLineIsOneErrorForKilnAndOptuna) {
  kiln::test::TempDir dir;
  const auto file = dir / "garbage.journal";
  Journal journal(file, "kiln-test");
  ASSERT_TRUE(journal.create_study("s", Direction::Maximize));
  ASSERT_EQ(journal.create_trial("s", TrialDraft{}), 0);
  // Optuna raises only when a line follows the bad one: give it one.
  append_raw(file,
             "this is not json\n"
             R"({"op_code":8,"worker_id":"w","trial_id":0,"user_attr":{"k":1}})"
             "\n");
  EXPECT_EQ(load_error(file), "journal " + file.string() + ":3: not valid JSON");
  EXPECT_THROW(journal.load("s"), DataError);
  EXPECT_THROW(journal.set_user_attr("s", 0, "k", 2), DataError);
  const auto optuna = run_optuna({"view", file.string(), "s"}, /*expect_success=*/false);
  KILN_REQUIRE_PYTHON(optuna);
  EXPECT_NE(optuna.exit_code, 0) << "Optuna read a journal with a garbage line";
  EXPECT_NE(optuna.output.find("JSONDecodeError"), std::string::npos) << optuna.output;
}

TEST(DamagedJournal, UnknownOpCodeAndMissingFields) {
  kiln::test::TempDir dir;
  const auto file = dir / "unknown.journal";
  Journal journal(file, "kiln-test");
  ASSERT_TRUE(journal.create_study("s", Direction::Maximize));
  append_raw(file, R"({"op_code":42,"worker_id":"w"})"
                   "\n");
  EXPECT_EQ(load_error(file), "journal " + file.string() + ":2: unknown op code 42");

  const auto missing = dir / "missing.journal";
  append_raw(missing, R"({"op_code":0,"worker_id":"w","study_name":"s","directions":[2]})"
                      "\n"
                      R"({"op_code":4,"worker_id":"w"})"
                      "\n");
  EXPECT_EQ(load_error(missing), "journal " + missing.string() + ":2: no 'study_id'");

  const auto no_distribution = dir / "no-distribution.journal";
  append_raw(
      no_distribution,
      R"({"op_code":0,"worker_id":"w","study_name":"s","directions":[2]})"
      "\n"
      R"({"op_code":4,"worker_id":"w","study_id":0,"datetime_start":null,"params":{"x":1.0}})"
      "\n");
  EXPECT_EQ(load_error(no_distribution),
            "journal " + no_distribution.string() + ":2: parameter 'x' has no distribution");

  // A complete last line that does not parse is an error too (Optuna skips it
  // until a line follows, then fails; kiln says so at once).
  const auto last = dir / "last.journal";
  append_raw(last, R"({"op_code":0,"worker_id":"w","study_name":"s","directions":[2]})"
                   "\n"
                   "{oops}\n");
  EXPECT_EQ(load_error(last), "journal " + last.string() + ":2: not valid JSON");
}

}  // namespace
}  // namespace kiln::sweep
