// What the store suites (store_test, list_store_test) share: result assertions that print the
// error, the backend's name in gtest messages, and the schema-upgrade set-up. Test code only:
// it includes gtest. Thread-safety: as gtest's assertions (the test's own thread).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "blindlist/result.h"
#include "store/migrations/migrations.h"
#include "store/scratch_database.h"
#include "store/sql.h"

#define ASSERT_OK(expr)                                                                            \
  do {                                                                                             \
    const auto& bl_result_ = (expr);                                                               \
    ASSERT_TRUE(bl_result_.ok()) << bl_result_.error().code << ": " << bl_result_.error().message; \
  } while (0)

#define EXPECT_OK(expr)                                                                            \
  do {                                                                                             \
    const auto& bl_result_ = (expr);                                                               \
    EXPECT_TRUE(bl_result_.ok()) << bl_result_.error().code << ": " << bl_result_.error().message; \
  } while (0)

#define EXPECT_ERROR(expr, expected_code)                                              \
  do {                                                                                 \
    const auto& bl_result_ = (expr);                                                   \
    EXPECT_FALSE(bl_result_.ok());                                                     \
    if (!bl_result_.ok()) {                                                            \
      EXPECT_EQ(bl_result_.error().code, expected_code) << bl_result_.error().message; \
    }                                                                                  \
  } while (0)

namespace blindlist::store::testkit {

// So gtest names the backend in failure messages.
inline void PrintTo(Backend backend, std::ostream* os) { *os << BackendName(backend); }

// The backend's part of a parameterised test's name ("sqlite", "postgresql").
inline std::string BackendParamName(const ::testing::TestParamInfo<Backend>& info) {
  return std::string(BackendName(info.param));
}

// Migrates the database at `url` with the first `steps` steps of `schema`, as a build that knew
// only those would: the version it reports, or its refusal (a database already newer).
inline Result<int> ApplyFirstSteps(const std::string& url, const migrations::Schema& schema,
                                   std::size_t steps) {
  BL_TRY_ASSIGN(std::unique_ptr<sql::ConnectionPool> pool, sql::OpenPool(url));
  migrations::Schema older = schema;
  older.steps = schema.steps.first(steps);
  return migrations::Apply(*pool, older);
}

// For each released schema older than `current`: a fresh database on `backend` that a build
// knowing only its first v steps made, handed (by URL) to `upgrade`, with v in the trace.
inline void ForEachOlderSchema(Backend backend, const migrations::Schema& current,
                               const std::function<void(const std::string& url)>& upgrade) {
  for (std::size_t v = 1; v < current.steps.size(); ++v) {
    SCOPED_TRACE("from version " + std::to_string(v));
    auto old = ScratchDatabase::Create(backend);
    ASSERT_OK(old);
    auto version = ApplyFirstSteps((*old)->url(), current, v);
    ASSERT_OK(version);
    ASSERT_EQ(*version, static_cast<int>(v));
    upgrade((*old)->url());
  }
}

}  // namespace blindlist::store::testkit
