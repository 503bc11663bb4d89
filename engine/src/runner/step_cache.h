// Private to the runner: the step cache under <registry>/stages/.
//   stages/<key>/manifest.json   a committed stage: its outputs and how they came about
//   stages/<key>/...             files the stage emitted
//   stages/.work/<key>-<rand>/   an attempt in progress (removed on failure)
//   stages/.resume/<key>/        what an interrupted attempt left for the next one
//   stages/.locks/<key>.lock     held while a stage with that key executes
#pragma once

#include <kiln/pipeline.h>
#include <kiln/stage.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

class StepCache {
 public:
  explicit StepCache(std::filesystem::path registry_root);

  // The committed outputs of `key` (paths made absolute, producer set), if any.
  std::optional<std::vector<Artifact>> lookup(const std::string& key,
                                              const std::string& producer) const;

  // The run that executed and committed `key` ("" for none or an unreadable manifest).
  std::string producer_run(const std::string& key) const;

  std::filesystem::path lock_file(const std::string& key) const;
  std::filesystem::path resume_dir(const std::string& key) const;
  // A fresh work directory for an attempt at `key`; earlier attempts' leftovers for
  // the same key are removed first (call with the key's lock held).
  std::filesystem::path start_attempt(const std::string& key) const;

  struct Attempt {
    const PipelineStage& stage;
    std::string key;
    std::filesystem::path work_dir;
    std::vector<Artifact> inputs;
    std::vector<Artifact> emitted;
    std::string run_id;
    double seconds = 0.0;
    bool replace = false;  // --force: an existing entry for the key is replaced
  };
  // Checks and hashes the emitted outputs, writes the manifest and renames the
  // work directory to stages/<key>. Returns the committed outputs.
  std::vector<Artifact> commit(const Attempt& attempt) const;

 private:
  std::filesystem::path root_;
  std::filesystem::path stages_;
};

}  // namespace kiln
