// Training checkpoints (train/checkpoint.cpp): any file either restores the model
// and optimizer, with the position it records, or gives a DataError; the model is
// the one of checkpoint_model.h, restored with AdamW and with SGD + momentum.
#include <kiln/error.h>

#include "fuzz/checkpoint_model.h"
#include "fuzz/fuzz_input.h"
#include "train/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static kiln::nn::Model model = kiln::nn::Model::build(kiln::fuzz::checkpoint_model_spec(), 0);
  const auto file = kiln::fuzz::write_input(data, size, "checkpoint.safetensors");
  for (const bool adamw : {true, false}) {
    const auto optimizer =
        adamw ? kiln::nn::make_adamw({}) : kiln::nn::make_sgd(kiln::fuzz::checkpoint_sgd());
    try {
      const auto position = kiln::train::load_checkpoint(file, model, *optimizer);
      if (!position || position->step < 0 || position->epoch < 0 || position->batch < 0)
        __builtin_trap();  // the file exists, and a position is never negative
    } catch (const kiln::DataError&) {
    }
  }
  return 0;
}
