from eropaf_portal.app import main

main()
