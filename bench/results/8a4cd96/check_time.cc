#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "mime/smime_shape.h"
int main(int argc, char** argv) {
  std::ifstream in(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string msg = ss.str();
  for (int i = 0; i < 5; ++i) {
    std::clock_t c0 = std::clock();
    auto shape = blindlist::mime::CheckWholeMessage(msg);
    std::clock_t c1 = std::clock();
    std::printf("bytes %zu ok %d smime %d cpu_ms %.1f\n", msg.size(), shape.ok(),
                shape.ok() && shape->smime, 1000.0 * (c1 - c0) / CLOCKS_PER_SEC);
  }
}
