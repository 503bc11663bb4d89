#include <kiln/version.h>

#include <cstdio>

int main() {
  std::printf("kiln %s\n", KILN_VERSION);
  return 0;
}
