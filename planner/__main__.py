from planner.cli.root import main

main()
