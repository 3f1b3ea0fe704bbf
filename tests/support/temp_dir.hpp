// tests/support/temp_dir.hpp — a fresh directory under GoogleTest's temp dir for one test, removed with its
// files when the object goes out of scope (one level: tests write plain files into it).
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace convarith::test {

class TempDir {
public:
  // prefix names the directory (<temp>/<prefix>XXXXXX), so a leftover says which test made it.
  explicit TempDir(const std::string& prefix = "convarith_") {
    std::string t = ::testing::TempDir() + prefix + "XXXXXX";
    path_ = mkdtemp(&t[0]) ? t : std::string();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (DIR* d = opendir(path_.c_str())) {
      while (dirent* e = readdir(d))
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
          std::remove((path_ + "/" + e->d_name).c_str());
      closedir(d);
    }
    ::rmdir(path_.c_str());
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

} // namespace convarith::test
