// catalog_eval [--tuning] [--misses]: the classifier's category agreement with the labelled
// set (Intercept's scaffolds). By default reports the held-out half; --tuning reports the
// half used for tuning. --misses lists the disagreements of the half reported.
#include <cstring>
#include <iostream>
#include <map>

#include "catalog/labelled_set.h"

int main(int argc, char** argv) {
  using namespace tw::catalog;
  bool tuning = false, misses = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--tuning")) tuning = true;
    if (!std::strcmp(argv[i], "--misses")) misses = true;
  }
  const auto tools = ReadLabelledTools(TW_COMPAT_DIR);
  int total = 0, agree = 0;
  std::map<std::string, std::pair<int, int>> per_category;
  for (const LabelledTool& t : tools) {
    if (t.holdout == tuning) continue;
    const Classification c = Classify(t.name, t.description);
    ++total;
    auto& pc = per_category[std::string(CategoryName(t.category))];
    ++pc.second;
    if (c.category == t.category) {
      ++agree;
      ++pc.first;
    } else if (misses) {
      std::cout << t.server << "/" << t.name << ": labelled " << CategoryName(t.category)
                << ", classified " << CategoryName(c.category) << " — " << t.description << "\n";
    }
  }
  std::cout << (tuning ? "tuning" : "held-out") << " set: " << agree << "/" << total
            << " agree (" << (total ? 100.0 * agree / total : 0) << " %)\n";
  for (const auto& [name, counts] : per_category) {
    std::cout << "  " << name << ": " << counts.first << "/" << counts.second << "\n";
  }
  return 0;
}
