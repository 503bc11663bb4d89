#include "ops/onednn.h"

#include "ops/precision.h"

#include <kiln/machine.h>

namespace kiln::ops::onednn {

dnnl::engine& engine() {
  static dnnl::engine instance(dnnl::engine::kind::cpu, 0);
  return instance;
}

dnnl::stream& stream() {
  static dnnl::stream instance(engine());
  return instance;
}

dnnl::memory wrap(const Tensor& tensor, const dnnl::memory::dims& dims,
                  dnnl::memory::format_tag tag) {
  return dnnl::memory({dims, dnnl::memory::data_type::f32, tag}, engine(),
                      const_cast<void*>(tensor.raw()));
}

dnnl::memory& Staged::input(dnnl::memory& user, const dnnl::memory::desc& wanted) {
  if (user.get_desc() == wanted) return user;
  if (!buffer_ || buffer_.get_desc() != wanted) {
    buffer_ = dnnl::memory(wanted, engine());
    reorder_ = dnnl::reorder(user, buffer_);
  }
  reorder_.execute(stream(), {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, buffer_}});
  return buffer_;
}

dnnl::memory& Staged::output(dnnl::memory& user, const dnnl::memory::desc& wanted) {
  staged_output_ = user.get_desc() != wanted;
  if (!staged_output_) return user;
  if (!buffer_ || buffer_.get_desc() != wanted) {
    buffer_ = dnnl::memory(wanted, engine());
    reorder_ = dnnl::reorder(buffer_, user);
  }
  return buffer_;
}

void Staged::finish(dnnl::memory& user) {
  if (staged_output_) reorder_.execute(stream(), {{DNNL_ARG_FROM, buffer_}, {DNNL_ARG_TO, user}});
}

}  // namespace kiln::ops::onednn

namespace kiln::ops {

bool cpu_has_bf16() {
  static const bool has = [] {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
  }();
  return has;
}

bool cpu_has_amx() {
  static const bool has = dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx;
  return has;
}

std::string cpu_isa_name() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

}  // namespace kiln::ops

namespace kiln {

std::string cpu_math_isa() { return ops::cpu_isa_name(); }

std::string onednn_version() {
  const dnnl_version_t* version = dnnl_version();
  return std::to_string(version->major) + "." + std::to_string(version->minor) + "." +
         std::to_string(version->patch);
}

}  // namespace kiln
