// A shared module without kiln_plugin_entry.
extern "C" __attribute__((visibility("default"))) int kiln_not_the_entry() { return 42; }
