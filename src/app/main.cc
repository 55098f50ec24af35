// toolwarden: a policy-enforcing gateway for the Model Context Protocol.
#include "app/commands.h"

int main(int argc, char** argv) { return tw::app::Main(argc, argv); }
