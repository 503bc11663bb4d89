#include "ops/onednn.h"

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

dnnl::memory& as_layout(dnnl::memory& user, const dnnl::memory::desc& wanted,
                        dnnl::memory& scratch, bool copy_in) {
  if (user.get_desc() == wanted) return user;
  if (!scratch || scratch.get_desc() != wanted) scratch = dnnl::memory(wanted, engine());
  if (copy_in) dnnl::reorder(user, scratch).execute(stream(), user, scratch);
  return scratch;
}

void copy_back(dnnl::memory& internal, dnnl::memory& user) {
  if (internal.get_data_handle() == user.get_data_handle()) return;
  dnnl::reorder(internal, user).execute(stream(), internal, user);
}

}  // namespace kiln::ops::onednn
