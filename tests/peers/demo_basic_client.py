# demo_basic_client.py: tutorial 2's demo-basic-client.py ("Python and
# Basic Networking Operations") in Python 3, as the article gives it.  The
# only deviation is the lines marked "test hook" (TUTORIAL_HOST and
# TUTORIAL_PORT instead of the fixed 127.0.0.1:60000).

import os  # test hook
import socket
import sys

def ProcessConnection (inSocket, message):
 # Note how the client program has to match the functionality of the
 # server program.
 # Get any message first.
 inMsg = GetData (inSocket)
 print ("Got Message [" + inMsg + "]")
 # Some sample commands...
 SendData (inSocket, message)
 inMsg = GetData (inSocket)
 print ("Got Second Message [" + inMsg + "]")

def GetData (inSocket):
 message = ""
 try:
  message = inSocket.recv(4096)
 except socket.error as err:
  print ("Couldn't receive message due to error [" + str(err) + "]")

 return message.decode()

def SendData (inSocket, message):
 try:
  inSocket.sendall(bytes(message, "utf-8"))
  print ("Successfully sent message [" + message + "]")
 except socket.error as err:
  print ("Couldn't send message due to error [" + str(err) + "]")

def main(argv):
 try:
  # As it was with the server, any use of an unsupported Address
  # Family or Type will give an "Operation not supported" error.
  # This method likewise does not allow for reusing of previously
  # closed sockets. This means that depending on which state the
  # socket was in when the socket was closed, this program may not be
  # immediately restartable. This is resolved by setting reusability
  # in the socket options (see the next line)
  s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

  # This option allows a socket to be reused without having to wait
  # for a timeout to expire.
  s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

  # Connect to the server. Both the host and port must match the
  # what the server is listening on. In this case we connect on the
  # localhost interface.
  host = os.environ.get("TUTORIAL_HOST", "127.0.0.1")  # test hook
  port = int(os.environ.get("TUTORIAL_PORT", "60000"))  # test hook
  s.connect ((host, port))  # test hook: the article has ("127.0.0.1", 60000)

  msgFromPrompt = "Hey!"
  try:
   msgFromPrompt = sys.argv[1]
  except Exception as err:
   print ("No message specified. Defaulting to \"Hey!\"")
   msgFromPrompt = "Hey!"
  ProcessConnection (s, msgFromPrompt)

  # Closes the socket.
  s.close()
  s = None
 except Exception as err:
  print ("Socket action failed due to error [" + str(err) + "]")


if __name__ == "__main__":
 main(sys.argv[1:])
