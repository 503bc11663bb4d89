// A real Slurm for the tests: slurmctld and slurmd of Debian's slurm-wlm on this
// machine, with a private slurm.conf in a temporary directory (auth/none, their own
// free ports, state and spool directories), started in the foreground by the test
// and stopped by pid. One node, "kilnnode", with 8 CPUs whatever the machine has
// (SlurmdParameters=config_overrides), so that a 2-core machine runs two 2-task
// jobs at once. DEVELOPERS.md says how to start the same cluster by hand.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "dist/free_port.h"
#include "support/support.h"

namespace kiln::test {

class SlurmCluster {
 public:
  // Why this machine cannot run the cluster ("" when it can).
  static std::string why_not() {
    if (::geteuid() != 0) return "the local Slurm runs as root (SlurmUser=root); not root here";
    for (const char* program : {"/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch"})
      if (!std::filesystem::exists(program))
        return std::string(program) + " is missing (Debian package slurm-wlm)";
    return "";
  }

  explicit SlurmCluster(const std::filesystem::path& dir) : dir_(dir) {
    std::filesystem::create_directories(dir_ / "state");
    std::filesystem::create_directories(dir_ / "spool");
    const int ctld_port = free_port(), slurmd_port = free_port();
    write_text(conf(), config(ctld_port, slurmd_port));
    ctld_ = start({"/usr/sbin/slurmctld", "-D", "-i", "-f", conf().string()}, "slurmctld");
    slurmd_ = start({"/usr/sbin/slurmd", "-D", "-N", "kilnnode", "-f", conf().string()}, "slurmd");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    CommandResult state;
    while (std::chrono::steady_clock::now() < deadline) {
      state = run_command({"/usr/bin/sinfo", "--noheader", "--format=%t"}, env());
      if (state.exit_code == 0 && state.out.rfind("idle", 0) == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    ADD_FAILURE() << "the local Slurm did not come up in 60 s; sinfo: " << state.out << state.err
                  << "\nslurmctld log:\n"
                  << read_text(dir_ / "slurmctld.log") << "\nslurmd log:\n"
                  << read_text(dir_ / "slurmd.log");
  }

  ~SlurmCluster() {
    // Jobs first (their steps would outlive slurmd), then the daemons, by pid.
    run_command({"/usr/bin/scancel", "--full", "--user=root"}, env());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stop(slurmd_);
    stop(ctld_);
  }

  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  std::filesystem::path conf() const { return dir_ / "slurm.conf"; }
  std::map<std::string, std::string> env() const { return {{"SLURM_CONF", conf().string()}}; }

  // The job's state in squeue ("" once the controller forgot it).
  std::string state(const std::string& job) const {
    const CommandResult result = run_command(
        {"/usr/bin/squeue", "--noheader", "--states=all", "--format=%T", "--jobs=" + job}, env());
    std::string text = result.exit_code == 0 ? result.out : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

 private:
  std::string config(int ctld_port, int slurmd_port) const {
    const std::string d = dir_.string();
    return "ClusterName=kilntest\n"
           "SlurmctldHost=localhost\n"
           "SlurmUser=root\nSlurmdUser=root\n"
           "AuthType=auth/none\nCredType=cred/none\n"
           // A requeued job may start again 5 s later (the default waits 120 s).
           "AuthInfo=cred_expire=5\n"
           "SlurmctldPort=" +
           std::to_string(ctld_port) +
           "\n"
           "SlurmdPort=" +
           std::to_string(slurmd_port) +
           "\n"
           "StateSaveLocation=" +
           d +
           "/state\n"
           "SlurmdSpoolDir=" +
           d +
           "/spool\n"
           "SlurmctldPidFile=" +
           d +
           "/slurmctld.pid\n"
           "SlurmdPidFile=" +
           d +
           "/slurmd.pid\n"
           "SlurmctldLogFile=" +
           d +
           "/slurmctld.log\n"
           "SlurmdLogFile=" +
           d +
           "/slurmd.log\n"
           "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
           "SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n"
           "MpiDefault=none\nSlurmdParameters=config_overrides\n"
           "SchedulerParameters=sched_interval=2\n"
           "ReturnToService=2\nKillWait=20\nMinJobAge=600\nJobRequeue=1\n"
           "NodeName=kilnnode NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=8 "
           "RealMemory=8000 State=UNKNOWN\n"
           "PartitionName=debug Nodes=kilnnode Default=YES MaxTime=INFINITE State=UP\n";
  }

  pid_t start(const std::vector<std::string>& argv, const std::string& name) const {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const std::string out = (dir_ / (name + ".stdout")).string();
      if (std::freopen(out.c_str(), "w", stdout) == nullptr) ::_exit(126);
      if (std::freopen(out.c_str(), "a", stderr) == nullptr) ::_exit(126);
      ::setsid();  // a terminal's Ctrl-C stops the test, the test stops the daemons
      std::vector<char*> args;
      for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    return pid;
  }

  static void stop(pid_t pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }

  std::filesystem::path dir_;
  pid_t ctld_ = -1, slurmd_ = -1;
};

}  // namespace kiln::test
