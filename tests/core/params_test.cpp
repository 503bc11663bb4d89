#include <kiln/error.h>
#include <kiln/params.h>

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(ParamSchema, RejectsADuplicateName) {
  ParamSchema schema;
  schema.optional("lr", ParamType::Float, 0.1, "");
  EXPECT_THROW(schema.optional("lr", ParamType::Float, 0.2, ""), PluginError);
}

TEST(ParamSchema, ChoiceDefaultsToTheFirst) {
  ParamSchema schema;
  schema.choice("optimizer", {"sgd", "adamw"}, "");
  EXPECT_EQ(schema.find("optimizer")->default_value->get<std::string>(), "sgd");
  EXPECT_EQ(schema.find("optimizer")->choices.size(), 2u);
}

TEST(Params, TypedGettersAndFailCarryTheOrigin) {
  const Params params("train", {{"lr", 0.5}, {"epochs", 3}, {"hidden", {256, 128}}},
                      {{"lr", "p.yaml:4:7"}});
  EXPECT_DOUBLE_EQ(params.get_float("lr"), 0.5);
  EXPECT_EQ(params.get_int("epochs"), 3);
  EXPECT_EQ(params.get_int_list("hidden"), (std::vector<std::int64_t>{256, 128}));
  try {
    params.fail("lr", "must be below 0.1");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "p.yaml:4:7: train.with.lr: must be below 0.1");
  }
  EXPECT_EQ(params.origin("epochs"), "default");
}

TEST(Params, ReadingAnUndeclaredParameterIsAnInternalError) {
  const Params params("train", {{"lr", 0.5}}, {});
  EXPECT_THROW(params.get_float("momentum"), InternalError);
  EXPECT_THROW(params.get_string("lr"), InternalError);
}

TEST(Errors, ExitCodesAreDistinctPerKind) {
  EXPECT_EQ(exit_code(ErrorKind::Config), 2);
  EXPECT_EQ(exit_code(ErrorKind::Stage), 3);
  EXPECT_EQ(exit_code(ErrorKind::Data), 3);
  EXPECT_EQ(exit_code(ErrorKind::Gate), 4);
  EXPECT_EQ(exit_code(ErrorKind::Plugin), 5);
  EXPECT_EQ(exit_code(ErrorKind::Interrupted), 130);
  EXPECT_EQ(exit_code(ErrorKind::Internal), 1);
}

TEST(Errors, RethrowWithContextKeepsTheClass) {
  try {
    try {
      throw GateError("accuracy 0.5 < 0.9");
    } catch (const Error& e) {
      rethrow_with_context(e, "stage 'evaluate': ");
    }
  } catch (const GateError& e) {
    EXPECT_STREQ(e.what(), "stage 'evaluate': accuracy 0.5 < 0.9");
    return;
  }
  FAIL() << "GateError expected";
}

}  // namespace
}  // namespace kiln
