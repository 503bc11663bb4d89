// A registry made by the real kiln CLI: tests/cli's synthetic pipeline (import,
// train, evaluate, register as synthetic-mlp@champion), with class names for the
// confusion matrix.
#pragma once

#include <gtest/gtest.h>

#include <kiln/registry/mlflow_store.h>

#include "cli/cli_fixture.h"

namespace kiln::test {

inline constexpr const char* kModel = "synthetic-mlp";

class ReportCliTest : public CliTest {
 protected:
  // Runs the pipeline; returns the id of the run that registered the model.
  std::string run_pipeline() {
    const CommandResult run =
        kiln({"run", "p.yaml",
              "evaluate.with.class_names=[t-shirt, trouser, pullover, dress, coat, sandal, "
              "shirt, sneaker, bag, boot]"});
    EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
    const auto versions = store().list_versions(kModel);
    EXPECT_EQ(versions.size(), 1u);
    return versions.empty() ? std::string() : versions[0].run_id;
  }
  registry::MlflowStore store() const { return registry::MlflowStore(registry()); }
};

}  // namespace kiln::test
