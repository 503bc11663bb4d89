#include <kiln/clock.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/log.h>
#include <kiln/slurm.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>

namespace kiln::slurm {
namespace fs = std::filesystem;

namespace {

constexpr const char* kRecordFile = "job.json";
constexpr const char* kEventsFile = "events.jsonl";

// Every Slurm job id the record names: "job_id", and each of "jobs".
std::vector<std::string> job_ids(const nlohmann::json& record) {
  std::vector<std::string> ids;
  if (record.contains("job_id") && record["job_id"].is_string())
    ids.push_back(record["job_id"].get<std::string>());
  if (record.contains("jobs") && record["jobs"].is_object())
    for (const auto& [role, id] : record["jobs"].items())
      if (id.is_string()) ids.push_back(id.get<std::string>());
  return ids;
}

}  // namespace

fs::path jobs_dir(const fs::path& registry_root) { return registry_root / "jobs"; }

fs::path new_submission_dir(const fs::path& registry_root, const std::string& name) {
  const fs::path parent = jobs_dir(fs::absolute(registry_root));
  fs::create_directories(parent);
  return make_unique_directory(parent, name + "-");
}

void write_record(const Submission& submission) {
  write_file_atomic(submission.dir / kRecordFile, submission.record.dump(2) + "\n");
}

std::vector<Submission> list_submissions(const fs::path& registry_root) {
  std::vector<Submission> submissions;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(jobs_dir(registry_root), ec)) {
    const fs::path file = entry.path() / kRecordFile;
    if (!fs::exists(file)) continue;  // submitted nothing (sbatch refused it)
    try {
      submissions.push_back({entry.path(), nlohmann::json::parse(read_file(file))});
    } catch (const std::exception& error) {
      log::warn("{}: skipped, not a job record: {}", file.string(), error.what());
    }
  }
  std::sort(submissions.begin(), submissions.end(), [](const auto& a, const auto& b) {
    return a.record.value("submitted", "") < b.record.value("submitted", "");
  });
  return submissions;
}

std::optional<Submission> find_submission(const fs::path& registry_root,
                                          const std::string& job_id) {
  const std::string job = job_id.substr(0, job_id.find('_'));
  for (const Submission& submission : list_submissions(registry_root)) {
    if (submission.dir.filename() == job_id) return submission;
    const std::vector<std::string> ids = job_ids(submission.record);
    if (std::find(ids.begin(), ids.end(), job_id) != ids.end() ||
        std::find(ids.begin(), ids.end(), job) != ids.end())
      return submission;
    // A schedule's later occurrences are in its events.
    for (const nlohmann::json& event : read_events(submission.dir))
      if (event.value("next_job_id", "") == job_id) return submission;
  }
  return std::nullopt;
}

void append_event(const fs::path& submission_dir, nlohmann::json event) {
  if (!event.contains("time")) event["time"] = iso8601_utc();
  append_line(submission_dir / kEventsFile, event.dump());
}

std::vector<nlohmann::json> read_events(const fs::path& submission_dir) {
  std::vector<nlohmann::json> events;
  std::ifstream in(submission_dir / kEventsFile);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      events.push_back(nlohmann::json::parse(line));
    } catch (const std::exception&) {
      // A line cut short by a crash: the events before and after it still count.
    }
  }
  return events;
}

}  // namespace kiln::slurm
