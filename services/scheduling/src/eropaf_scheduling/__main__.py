from eropaf_scheduling.app import main

main()
