from eropaf_notification.app import main

main()
