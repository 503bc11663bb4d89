// libhdf5 outside kiln's process. Debian 12's libhdf5 (1.10.8) crashes on some
// damaged files (tests/fuzz/known-crashes/hdf5/): a bad global-heap index in a
// string attribute reads out of bounds, a damaged header asks for 10^16 bytes.
// kiln cannot fix libhdf5, so before it opens an HDF5 file it lets a separate
// program, kiln-hdf5-reader, do the same reads first, under a memory limit and a
// time limit. A crash, a hang or an exhausted limit there becomes one DataError
// naming the file here. Imports go further: the source's arrays are read in that
// program and reach kiln as bytes through a pipe, so kiln never parses an
// imported file itself. Internal to engine/src/data.
#pragma once

#include <kiln/data/array.h>
#include <kiln/data/dataset.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln::data::hdf5 {

// Runs `kiln-hdf5-reader check FILE`: reads the metadata kiln reads from a dataset
// file (read_dataset_info; DatasetReader's arrays, chunking and recorded hashes)
// and the first and last row of each array. Returns when that ended, whether or
// not it found the file valid: the caller's own reads then report what is wrong.
// DataError naming the file when the reader crashed, hung or ran out of memory.
// Does nothing inside kiln-hdf5-reader itself, nor for a file this process checked
// before with the same reader and budget and that has not changed since (its
// status unchanged since a second before that check).
void check_in_reader_process(const std::filesystem::path& file);

// Where the arrays from kiln-hdf5-reader go as they arrive: each array's
// begin_array, then all its bytes in pieces, then the next array.
class ArraySink {
 public:
  virtual ~ArraySink() = default;
  virtual void begin_array(const ArrayInfo& info) = 0;
  virtual void write(const std::uint8_t* bytes, std::size_t size) = 0;
};

// Streams the arrays of an HDF5 file named by `specs` (NAME or NAME=PATH,
// hdf5_source.h), in that order, through `kiln-hdf5-reader arrays FILE SPEC...`
// into `sink`. Returns array name -> the stored type it was converted from ("u16",
// "bool") for arrays whose type kiln does not have. DataError naming the file, and
// the array where one is at fault, for a file kiln cannot read.
std::map<std::string, std::string> stream_arrays_in_reader_process(
    const std::filesystem::path& file, const std::vector<std::string>& specs, ArraySink& sink);

struct SourceArrays {
  std::vector<Array> arrays;
  // Array name -> the stored type it was converted from ("u16", "bool"), for
  // arrays whose type kiln does not have (hdf5_source.h).
  std::map<std::string, std::string> converted;
};

// stream_arrays_in_reader_process into memory, each array's declared size checked
// against the file and the import budget (check_declared_size) before it is
// allocated.
SourceArrays read_arrays_in_reader_process(const std::filesystem::path& file,
                                           const std::vector<std::string>& specs);

// The program: $KILN_HDF5_READER if set, else libexec/kiln/kiln-hdf5-reader in
// the prefix of the running program or of libkiln.
std::filesystem::path reader_program();

namespace detail {
// True in kiln-hdf5-reader, which reads in its own process (set by reader_main).
extern std::atomic<bool> in_reader_process;
}  // namespace detail

// main() of kiln-hdf5-reader (tools/hdf5_reader): "check FILE" or
// "arrays FILE NAME[=PATH]...", each after "--memory BYTES --".
int reader_main(int argc, char** argv);

}  // namespace kiln::data::hdf5
