from eropaf_intake.app import main

main()
