from accelsim.entry import main

main()
