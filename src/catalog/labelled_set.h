// The labelled tool set used to measure the classifier: Intercept's policy scaffolds (in
// shared/compat) list each tool under a category heading with its description in a comment.
// Test-only.
#pragma once

#include <string>
#include <vector>

#include "catalog/classify.h"

namespace tw::catalog {

struct LabelledTool {
  std::string server;  // the file's name without .yaml
  std::string name;
  std::string description;
  Category category;
  bool holdout;  // in the evaluation half the classifier was not tuned on
};

// Reads every scaffold in `dir` (testdata-* skipped). Files in alphabetical order; every third
// one (index % 3 == 2) is held out: chosen before tuning, never looked at while tuning.
std::vector<LabelledTool> ReadLabelledTools(const std::string& dir);

}  // namespace tw::catalog
