# demo_basic_server.py: tutorial 2's demo-basic-server.py ("Python and
# Basic Networking Operations") in Python 3, as the article gives it, with
# its "]n" typos fixed to "]\n".  The only deviation is the lines marked
# "test hook" (TUTORIAL_PORT, and the PORT line when it is 0).

import datetime
import os  # test hook
import socket
import sys

def main(argv):
 try:
  # Any use of an unsupported Address Family or Type will give an
  # "Operation not supported" error.
  # This method does not allow for reusing of previously closed
  # sockets. This means that depending on which state the socket
  # was in when the socket was closed, this program may not be
  # immediately restartable. This is resolved by setting reusability
  # in the socket options (see the next line)
  s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

  # This option allows a socket to be reused without having to wait
  # for a timeout to expire.
  s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

  # Network addresses in Python are represented as "(interface, port)"
  # including the parenthesis.

  # Bind to all interfaces on the device, on port 60000  # port-ok
  # Ports below 1024 must be bound as root. In this example, if it
  # necessary to bind to a specific interface for this device, then
  # the '' below would be replaced with '127.0.0.1' or whatever other
  # interface is configured.
  port = int(os.environ.get('TUTORIAL_PORT', '60000'))  # test hook
  s.bind(('', port))  # test hook: the article binds ('', 60000)

  # If the listen method does not immediately follow the bind method,
  # then an "Invalid argument" error will occur. Note that as Python 3.5
  # a parameter to this is optional.
  s.listen()
  if port == 0:  # test hook
   print("PORT " + str(s.getsockname()[1]), flush=True)  # test hook

  # Since the accept method blocks, there is no way to trap a
  # Keyboard interrupt within the while loop.

  try:
   while True:
    # The accept method will block until a connection is made.
    conn, addr = s.accept()
    print ("Got a connection from [" + str(addr) + "] at [" +
     str(datetime.datetime.now()) + "]")
    # This command presumes UTF-8 encoding for strings. If this is not
    # the default system encoding, then it must be changed or else the
    # command will raise an exception.
    conn.sendall(b"You connected at [" + bytes(str(datetime.datetime.now()), 'utf-8')
     + b"]\n")

    # Read any input from the connection, so it can be echoed back.
    # The 4096 value is recommended by the official Python documentation.
    # The command blocks until either the data count below is received
    # or when a user enters a newline character.
    data = conn.recv(4096)

    conn.sendall (b"You sent: [" + data + b"]\n")

    # Do some rudimentary processing. Note the binary data conversion.
    if b"shutdown" == data.strip().lower():
     conn.sendall(b"You told me to shut down!\n")
     raise Exception ("Remote user initiated shutdown.")

    conn.close()
  except KeyboardInterrupt:
   print ("User pressed Ctrl-C, stopping.")
  except Exception as err:
   print ("Execution ended because of [" + str(err) + "]")
  # Closes the socket.
  s.close()
  s = None

 except Exception as err:
  print ("Socket listen failed due to error [" + str(err) + "]")


if __name__ == "__main__":
 main(sys.argv[1:])
