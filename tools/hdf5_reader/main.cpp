// kiln-hdf5-reader: reads HDF5 files for kiln in a process of its own, so that a
// crash of libhdf5 on a damaged file does not take kiln down with it. kiln runs it;
// engine/src/data/hdf5_reader_main.cpp says what it does.
#include "data/hdf5_reader_process.h"

int main(int argc, char** argv) { return kiln::data::hdf5::reader_main(argc, argv); }
