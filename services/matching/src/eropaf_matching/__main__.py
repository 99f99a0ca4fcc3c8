from eropaf_matching.app import main

main()
