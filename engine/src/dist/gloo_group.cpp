// The Gloo backend: a full mesh of TCP pairs set up through the rendezvous store
// (Gloo's connectFullMesh), and Gloo's collectives with the group's timeout.
#include <kiln/error.h>

#include <fmt/format.h>
#include <gloo/allgather.h>
#include <gloo/allgatherv.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include "dist/backends.h"

namespace kiln::dist {
namespace {

// Gloo's view of a kiln store, under a prefix. A wait that times out names the
// ranks whose keys (Gloo keys them by rank number) never appeared.
class GlooStore final : public gloo::rendezvous::Store {
 public:
  GlooStore(dist::Store& store, int size, std::chrono::milliseconds timeout)
      : store_(store), size_(size), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override {
    store_.set("gloo." + key, std::string(data.begin(), data.end()));
  }
  std::vector<char> get(const std::string& key) override {
    wait({key});
    const std::string value = *store_.try_get("gloo." + key);
    return {value.begin(), value.end()};
  }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      std::vector<std::string> missing;
      for (const auto& key : keys)
        if (!store_.try_get("gloo." + key)) missing.push_back(key);
      if (missing.empty()) return;
      if (std::chrono::steady_clock::now() >= deadline) {
        // Gloo waits for one rank's key at a time; name every rank not there yet.
        std::string names;
        for (int r = 0; r < size_; ++r)
          if (!store_.try_get("gloo." + std::to_string(r)))
            names += (names.empty() ? "" : ", ") + std::to_string(r);
        if (names.empty())
          for (const auto& key : missing) names += (names.empty() ? "" : ", ") + key;
        throw StageError(fmt::format("rendezvous {}: rank(s) {} did not join within {:.1f} s",
                                     store_.describe(), names, timeout.count() / 1e3));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  dist::Store& store_;
  int size_;
  std::chrono::milliseconds timeout_;
};

class GlooProcessGroup final : public ProcessGroup {
 public:
  GlooProcessGroup(const DistEnv& env, std::shared_ptr<GroupState> state,
                   const GroupOptions& options)
      : ProcessGroup(env.rank, env.world_size, state), store_(state->store) {
    auto context = std::make_shared<gloo::rendezvous::Context>(env.rank, env.world_size);
    context->setTimeout(options.timeout);
    gloo::transport::tcp::attr attr;
    attr.hostname = options.hostname;
    std::shared_ptr<gloo::transport::Device> device;
    try {
      device = gloo::transport::tcp::CreateDevice(attr);
    } catch (const std::exception& error) {
      throw ConfigError(
          fmt::format("Gloo cannot use host '{}' (set KILN_GLOO_HOSTNAME to an "
                      "address of this machine the other ranks reach): {}",
                      options.hostname, error.what()));
    }
    GlooStore gloo_store(*store_, env.world_size, options.timeout);
    try {
      context->connectFullMesh(gloo_store, device);
    } catch (const kiln::Error&) {
      throw;
    } catch (const std::exception& error) {
      throw StageError(fmt::format("rank {}: Gloo could not connect to the other {} ranks: {}",
                                   env.rank, env.world_size - 1, error.what()));
    }
    context_ = std::move(context);
  }

  const char* backend() const noexcept override { return "gloo"; }

 protected:
  void do_all_reduce(float* data, std::size_t count, ReduceOp op, bool on_device) override {
    check_host(on_device);
    if (count == 0) return;
    gloo::AllreduceOptions opts(context_);
    opts.setOutput(data, count);
    opts.setReduceFunction(
        static_cast<void (*)(void*, const void*, const void*, std::size_t)>(&gloo::sum<float>));
    opts.setTag(tag());
    opts.setTimeout(timeout());
    gloo::allreduce(opts);
    if (op == ReduceOp::Avg) {
      const float scale = 1.0f / static_cast<float>(size());
      for (std::size_t i = 0; i < count; ++i) data[i] *= scale;
    }
  }

  void do_broadcast(void* data, std::size_t bytes, int root, bool on_device) override {
    check_host(on_device);
    if (bytes == 0) return;
    gloo::BroadcastOptions opts(context_);
    opts.setOutput(static_cast<std::uint8_t*>(data), bytes);
    opts.setRoot(root);
    opts.setTag(tag());
    opts.setTimeout(timeout());
    gloo::broadcast(opts);
  }

  void do_barrier() override {
    gloo::BarrierOptions opts(context_);
    opts.setTag(tag());
    opts.setTimeout(timeout());
    gloo::barrier(opts);
  }

  std::vector<std::string> do_all_gather(const std::string& bytes) override {
    std::vector<std::uint64_t> sizes(static_cast<std::size_t>(size()));
    std::uint64_t mine = bytes.size();
    {
      gloo::AllgatherOptions opts(context_);
      opts.setInput(&mine, 1);
      opts.setOutput(sizes.data(), sizes.size());
      opts.setTag(tag());
      opts.setTimeout(timeout());
      gloo::allgather(opts);
    }
    std::vector<std::size_t> counts(sizes.begin(), sizes.end());
    std::size_t total = 0;
    for (const auto n : counts) total += n;
    std::string gathered(total, '\0');
    if (total > 0) {
      std::string input = bytes;
      gloo::AllgathervOptions opts(context_);
      opts.setInput(input.data(), input.size());
      opts.setOutput(gathered.data(), counts);
      opts.setTag(tag() ^ 0x80000000u);  // the second message of this collective
      opts.setTimeout(timeout());
      gloo::allgatherv(opts);
    }
    std::vector<std::string> out;
    std::size_t offset = 0;
    for (const auto n : counts) {
      out.push_back(gathered.substr(offset, n));
      offset += n;
    }
    return out;
  }

 private:
  static void check_host(bool on_device) {
    if (on_device)
      throw InternalError("the Gloo process group reduces CPU tensors; CUDA tensors need NCCL");
  }

  std::shared_ptr<Store> store_;
  std::shared_ptr<gloo::Context> context_;
};

}  // namespace

std::unique_ptr<ProcessGroup> make_gloo_group(const DistEnv& env, std::shared_ptr<GroupState> state,
                                              const GroupOptions& options) {
  return std::make_unique<GlooProcessGroup>(env, std::move(state), options);
}

}  // namespace kiln::dist
