#include "catalog/labelled_set.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace tw::catalog {

std::vector<LabelledTool> ReadLabelledTools(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (e.path().extension() == ".yaml" && !n.starts_with("testdata-")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<LabelledTool> out;
  for (size_t i = 0; i < files.size(); ++i) {
    std::ifstream in(files[i]);
    std::string line;
    int current = -1;  // the Category of the heading we are under, -1 for none
    std::string pending_name, pending_description;
    while (std::getline(in, line)) {
      // "    #  ── Destructive Tools ───"
      if (line.find("\u2500\u2500 ") != std::string::npos && line.find(" Tools") != std::string::npos) {
        current = -1;
        for (Category c : {Category::kRead, Category::kWrite, Category::kExecute,
                           Category::kFinancial, Category::kDestructive}) {
          if (line.find(std::string(CategoryName(c)) + " Tools") != std::string::npos) {
            current = static_cast<int>(c);
          }
        }
        continue;
      }
      // "    #  tool_name: Description text"
      const size_t hash = line.find("#  ");
      if (hash != std::string::npos && line.find_first_not_of(' ') == hash) {
        const std::string rest = line.substr(hash + 3);
        const size_t colon = rest.find(": ");
        if (colon != std::string::npos && rest.find(' ') > colon) {
          pending_name = rest.substr(0, colon);
          pending_description = rest.substr(colon + 2);
        }
        continue;
      }
      // "    tool_name:" right after its comment
      const size_t first = line.find_first_not_of(' ');
      if (current >= 0 && first == 4 && !pending_name.empty() && line == "    " + pending_name + ":") {
        out.push_back({files[i].stem().string(), pending_name, pending_description,
                       static_cast<Category>(current),
                       i % 3 == 2});
      }
      if (first != std::string::npos && line[first] != '#') pending_name.clear();
    }
  }
  return out;
}

}  // namespace tw::catalog
